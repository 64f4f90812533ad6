#!/usr/bin/env bash
# Builds the .deb packages into target/debian/:
#   whisper-appliance_<version>-1_amd64.deb        the binary, the units, config, nginx site, man pages
#   whisper-appliance-model-tiny-en_<...>_all.deb  the tiny.en model (packaging/build-model-deb.sh)
#   whisper-appliance-model-base_<...>_all.deb     the multilingual base model (the same script)
#
#   packaging/build-debs.sh            build them all (cargo-deb is installed with cargo if missing)
#   packaging/build-debs.sh --binary   only the static binary, for a quick look (prints its path)
#
# The binary is built here, not by cargo-deb, with two choices that a plain `cargo build --release`
# (a developer's machine, .ci/setup) does not make:
#
# 1. Static: `-C target-feature=+crt-static` links glibc statically, so the package depends on no
#    library at all and `ldd` says "statically linked". Two catches, both handled:
#    - whisper-rs-sys's build script asks for `dylib=stdc++`, which rustc passes as
#      `-Bdynamic -lstdc++`; in a static-pie link that pulls libstdc++.so into a binary with no
#      dynamic loader, which crashes at start. The linker looks for `-l` names directory by
#      directory, .so before .a within each, so a directory holding only libstdc++.a, searched
#      first (-L), makes that same request link the static archive.
#    - crt-static must apply to the target only: on proc-macro crates it is an error. Hence
#      `--target x86_64-unknown-linux-gnu`, which keeps RUSTFLAGS off the host's build scripts and
#      proc macros; the binary lands in target/x86_64-unknown-linux-gnu/release/.
#    A static glibc cannot load NSS modules or other shared objects: the appliance resolves no
#    names and looks up no users (it binds IP addresses, or takes its socket from systemd), and
#    whisper.cpp loads no backend modules here (GGML_BACKEND_DL is off). OpenMP is not used
#    (whisper-rs's `openmp` feature is off; ggml uses its own thread pool), so no libgomp.
#    GPU builds (the `cuda`/`vulkan` features) must load the driver's shared libraries and so cannot
#    be static: they are built from source, not packaged here.
# 2. Portable: whisper.cpp is compiled for x86-64-v3 (AVX, AVX2, FMA, F16C, BMI2, SSE4.2; Intel
#    Haswell (2013) and later Core/Xeon, AMD Excavator/Zen and later), not with GGML_NATIVE=ON
#    (-march=native, its default), which would make a package built on a new CPU die with SIGILL on
#    an older one. The trade-off: CPUs without AVX2 (older or low-end Atom/Celeron/Pentium) cannot
#    run the package, and CPUs with AVX-512 or AVX-VNNI do not use them (a native build from source
#    is somewhat faster there). The Rust code keeps the baseline x86-64 target.
#    These GGML_* variables reach cmake through whisper-rs-sys's build script, which does not tell
#    cargo to rebuild when they change; only builds with --target x86_64-unknown-linux-gnu (this
#    script) write that directory, so its cached whisper.cpp build always has these values. After
#    changing them: cargo clean --release --target x86_64-unknown-linux-gnu -p whisper-rs-sys
#
# Release profile (Cargo.toml): fat LTO, one codegen unit, stripped, panic = "unwind" on purpose.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
say() { echo "== build-debs: $*" >&2; }

target=x86_64-unknown-linux-gnu
binary=$repo/target/$target/release/whisper-appliance
out=$repo/target/debian
cargo_deb_version=3.8.0

# --- the binary ------------------------------------------------------------------------------------------
static_libs=$repo/target/packaging/static-libs
mkdir -p "$static_libs"
libstdcxx=$(c++ -print-file-name=libstdc++.a)
[ -f "$libstdcxx" ] || { echo "no libstdc++.a from c++ -print-file-name; apt-get install g++" >&2; exit 1; }
ln -sfn "$libstdcxx" "$static_libs/libstdc++.a"

say "building the static x86-64-v3 binary (cargo build --release --target $target)"
start=$SECONDS
RUSTFLAGS="-C target-feature=+crt-static -L native=$static_libs" \
  GGML_NATIVE=OFF GGML_SSE42=ON GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON GGML_BMI2=ON \
  GGML_AVX_VNNI=OFF GGML_AVX512=OFF \
  cargo build --release --locked --target "$target" --quiet
say "built in $((SECONDS - start)) s: $binary ($(stat -c %s "$binary") bytes)"

# A binary that still needs a shared library (or the dynamic loader) would defeat the point.
if ! ldd "$binary" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
  ldd "$binary" >&2 || true
  echo "build-debs: $binary is not static" >&2
  exit 1
fi
"$binary" --version >&2
if [ "${1:-}" = "--binary" ]; then
  echo "$binary"
  exit 0
fi

# --- man pages, from the binary being packaged -----------------------------------------------------------------
rm -rf "$repo/target/man"
mkdir -p "$repo/target/man"
"$binary" man --out-dir "$repo/target/man"

# --- whisper-appliance.deb --------------------------------------------------------------------------------------
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  say "installing cargo-deb $cargo_deb_version (cargo install)"
  cargo install cargo-deb --locked --version "$cargo_deb_version" --quiet
fi
mkdir -p "$out"
rm -f "$out"/whisper-appliance_*.deb
cargo deb --no-build --target "$target" --output "$out" >/dev/null

# --- the model's .deb -------------------------------------------------------------------------------------------
"$repo/packaging/build-model-deb.sh" --binary "$binary" --out "$out"

say "packages:"
for deb in "$out"/*.deb; do
  echo "   $(basename "$deb")  $(stat -c %s "$deb") bytes" >&2
done
