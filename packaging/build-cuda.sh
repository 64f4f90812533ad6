#!/usr/bin/env bash
# Builds whisper-appliance with the `cuda` feature on Debian 12, on a machine with or without a GPU:
#
#   packaging/build-cuda.sh           release build -> target/cuda/release/whisper-appliance, with the
#                                     CUDA libraries it loads beside it in target/cuda/lib/whisper-appliance/
#   packaging/build-cuda.sh --test    ... then tests/gpu_fallback.rs against cargo test's build of the
#                                     binary (see below): where no GPU or driver exists, it must say so
#                                     once and transcribe jfk.wav on the CPU; on a GPU host it must
#                                     name the GPU
#   packaging/build-cuda.sh --deb     ... then target/cuda/debian/whisper-appliance-cuda_*.deb (the
#                                     binary, the CUDA runtime libraries, everything else as in
#                                     whisper-appliance), checked with lintian; packaging/test-install.sh
#                                     --cuda runs this, then installs, uses and purges the package
#
# Debian 12 has no CUDA 13 toolkit, so nvcc and the libraries come from NVIDIA's PyPI wheels
# (nvidia-cuda-nvcc, -cuda-crt, -nvvm, -cuda-runtime, -cublas, -cuda-cccl). They install into one
# toolkit-shaped folder, site-packages/nvidia/cu13 (bin, include, lib, nvvm), inside a venv under
# target/cuda-sdk/; nothing is installed system-wide.
#
# No driver is needed to build or to start. ggml-cuda reaches the driver API (libcuda.so.1, which
# only an NVIDIA driver installs) only for its virtual-memory pool; GGML_CUDA_NO_VMM=ON builds the
# plain cudaMalloc pool instead, so nothing in the binary calls the driver directly: libcudart loads
# libcuda.so.1 itself at run time, and where there is none, ggml finds no device and whisper.cpp
# runs on the CPU. whisper-rs-sys still passes `-lcuda` to the linker; an empty stub libcuda.so
# (target/cuda-sdk/link/) answers that, and with --as-needed (rustc's default) it leaves no
# NEEDED entry, which this script checks. It also asks for culibos, a static helper only the static
# CUDA runtime needs; an empty archive answers that.
#
# The binary finds libcudart, libcublas and libcublasLt through RUNPATH $ORIGIN/../lib/whisper-appliance:
# /usr/lib/whisper-appliance/ once packaged, target/cuda/lib/whisper-appliance/ (links into the venv)
# here.
#
# GPU architectures: CUDA_ARCHITECTURES, default "80" (compute capability 8.0 as SASS and as PTX), one
# device compile per kernel file, because each one listed costs a full compile of ggml-cuda's ~160
# files. sm_80 SASS runs natively on every 8.x GPU (A100, A10, A30, A40, L4, L40/L40S, RTX 30 and
# RTX 40 series, Jetson Orin); the compute_80 PTX is compiled by the driver on first use for newer
# ones (H100/H200 9.0, B200 10.0, RTX 50 12.0) and cached (systemd/gpu.conf gives the cache a place).
# Not covered: pre-Ampere GPUs (Turing T4/RTX 20: add "75-virtual"; CUDA 13 has dropped Volta and
# older). For a fleet of Hopper or Blackwell GPUs, add their SASS to skip the JIT:
# CUDA_ARCHITECTURES="80;90-real;120a-real". whisper-rs-sys does not rebuild when it changes: after
# changing it, cargo clean --release --target-dir target/cuda -p whisper-rs-sys.
#
# The CPU half of whisper.cpp is built for x86-64-v3, as packaging/build-debs.sh builds the CPU
# package (not -march=native). The Rust dependencies are built once in target/cuda/ and kept, so a
# second run only relinks; a cold build is long (nvcc), so .ci/test builds and checks the package
# (packaging/test-install.sh --cuda, which runs --deb) only when the inputs changed since it last
# passed here, or with --slow. --test compiles whisper.cpp and its kernels a second time (cargo test
# resolves the dev-dependencies, which change whisper-rs-sys's build dependencies' features, so it
# gets its own build directory: as long as a cold build the first time): run it on a GPU host.
# Needs root for apt when lintian is missing (--deb).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
sdk=$repo/target/cuda-sdk
toolkit=$sdk/cuda
link=$sdk/link
target_dir=$repo/target/cuda
libs=$target_dir/lib/whisper-appliance
# The libraries the binary loads, which the package ships (the driver's libcuda.so.1 is not one).
runtime_libs=(libcudart.so.13 libcublas.so.13 libcublasLt.so.13)
cargo_deb_version=3.8.0
say() { echo "== build-cuda: $*" >&2; }

mode=${1:-}
case $mode in
  ""|--test|--deb) ;;
  -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
  *) echo "unknown argument: $mode (see --help)" >&2; exit 2 ;;
esac

# CUDA 13.0 (update 2), the first CUDA 13 release: a driver compiles PTX only from a toolkit no newer
# than itself, so PTX from nvcc 13.5 failed on an H200 with driver 580 (CUDA 13.0) with "the provided
# PTX was compiled with an unsupported toolchain". Built with 13.0, every CUDA 13 driver (580 and
# later) takes it. A toolkit of another release is replaced (and whisper-rs-sys rebuilt).
cuda_release=13.0.88
if [ -x "$toolkit/bin/nvcc" ] && ! "$toolkit/bin/nvcc" --version | grep -q "V$cuda_release"; then
  say "replacing $("$toolkit/bin/nvcc" --version | tail -n1) with CUDA $cuda_release"
  rm -rf "$sdk"
  cargo clean --release --target-dir "$target_dir" -p whisper-rs-sys
fi
if [ ! -x "$toolkit/bin/nvcc" ]; then
  say "installing nvcc, the CUDA runtime and cuBLAS (CUDA $cuda_release) from PyPI into $sdk/venv"
  rm -rf "$sdk" && python3 -m venv "$sdk/venv"
  "$sdk/venv/bin/pip" install --quiet "nvidia-cuda-nvcc==$cuda_release" "nvidia-cuda-crt==$cuda_release" \
    "nvidia-nvvm==$cuda_release" "nvidia-cuda-runtime==13.0.96" "nvidia-cublas==13.1.0.3" "nvidia-cuda-cccl==13.0.85"
  ln -sfn "$("$sdk/venv/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')/nvidia/cu13" "$toolkit"
fi
"$toolkit/bin/nvcc" --version | tail -n2
# nvcc 13.0 links its test programs from lib64/, where a toolkit keeps them; the wheels use lib/.
[ -e "$toolkit/lib64" ] || ln -s lib "$toolkit/lib64"

# Link-time names: the wheels carry only versioned files (libcudart.so.13); the linker looks for
# libcudart.so. CMake's FindCUDAToolkit looks in the toolkit's lib/, the Rust link in $link.
mkdir -p "$link" "$libs"
for lib in "${runtime_libs[@]}"; do
  [ -f "$toolkit/lib/$lib" ] || { echo "the wheels carry no $lib" >&2; exit 1; }
  ln -sfn "$lib" "$toolkit/lib/${lib%.so.*}.so"
  ln -sfn "$toolkit/lib/$lib" "$link/${lib%.so.*}.so"
  ln -sfn "$toolkit/lib/$lib" "$libs/$lib"
done
[ -f "$link/libcuda.so" ] || echo | cc -shared -x c -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" -
[ -f "$link/libculibos.a" ] || ar rc "$link/libculibos.a"

export CUDA_PATH=$toolkit CUDAToolkit_ROOT=$toolkit CMAKE_CUDA_COMPILER=$toolkit/bin/nvcc
export CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-80}
export GGML_CUDA_NO_VMM=ON
export GGML_NATIVE=OFF GGML_SSE42=ON GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON GGML_BMI2=ON \
  GGML_AVX_VNNI=OFF GGML_AVX512=OFF
export LIBRARY_PATH=$link${LIBRARY_PATH:+:$LIBRARY_PATH}
# Only this target directory is built with these flags, so its cache stays valid from run to run.
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell
export RUSTFLAGS='-C link-arg=-Wl,-rpath,$ORIGIN/../lib/whisper-appliance'
export CARGO_TARGET_DIR=$target_dir
binary=$target_dir/release/whisper-appliance

started=$SECONDS
say "cargo build --release --features cuda (architectures $CMAKE_CUDA_ARCHITECTURES; a cold build compiles ggml-cuda with nvcc: long)"
nice -n 19 cargo build --release --locked --features cuda
say "built $binary in $((SECONDS - started)) s ($(stat -c %s "$binary") bytes)"

needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd' ' -)
say "NEEDED: $needed"
# Each runtime library (libcublasLt through libcublas) resolves to the copy beside the binary. (ldd's
# output is read whole first: `ldd | grep -q` under pipefail fails when grep stops reading early.)
resolved=$(ldd "$binary")
for lib in "${runtime_libs[@]}"; do
  grep -q "^[[:space:]]*$lib => $target_dir/release/../lib/whisper-appliance/$lib " <<<"$resolved" ||
    { echo "build-cuda: the binary does not load $lib from $libs" >&2; exit 1; }
done
if [[ " $needed " == *" libcuda.so"* ]]; then
  echo "build-cuda: the binary needs the driver's libcuda.so.1 and would not start without a driver" >&2
  exit 1
fi
"$binary" --version

case $mode in
  --test)
    say "tests/gpu_fallback.rs against this build"
    nice -n 19 cargo test --release --locked --features cuda --test gpu_fallback
    ;;
  --deb)
    command -v lintian >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian >/dev/null
    if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
      say "installing cargo-deb $cargo_deb_version (cargo install)"
      cargo install cargo-deb --locked --version "$cargo_deb_version" --quiet
    fi
    rm -rf "$target_dir/man" && mkdir -p "$target_dir/man"
    "$binary" man --out-dir "$target_dir/man"
    # The package's copyright file: ours, then NVIDIA's licence for the libraries it ships (their
    # EULA lets applications redistribute them; its text travels with them).
    eula=$(ls "$sdk"/venv/lib/python3*/site-packages/nvidia_cuda_runtime-*.dist-info/licenses/License.txt)
    {
      cat packaging/debian/copyright
      printf '\nFiles: usr/lib/whisper-appliance/*\nCopyright: NVIDIA Corporation\nLicense: NVIDIA-CUDA-Toolkit-EULA\n'
      printf 'Comment: %s, from NVIDIA'"'"'s PyPI wheels (CUDA 13). The binary itself is dynamically linked.\n' \
        "${runtime_libs[*]}"
      printf '\nLicense: NVIDIA-CUDA-Toolkit-EULA\n'
      sed 's/[[:space:]]*$//; s/^$/./; s/^/ /' "$eula"
    } >"$target_dir/copyright"
    mkdir -p "$target_dir/debian" && rm -f "$target_dir"/debian/whisper-appliance-cuda_*.deb
    # --fast: xz at a low level. The CUDA libraries are ~600 MB; the default level took 535 s here for
    # a package 1.6% smaller (433 against 440 MB), --fast 110 s.
    cargo deb --no-build --variant cuda --fast --output "$target_dir/debian/" >/dev/null
    deb=$(ls "$target_dir"/debian/whisper-appliance-cuda_*.deb)
    say "lintian $(basename "$deb")"
    lintian --fail-on error "$deb"
    say "$deb: $(stat -c %s "$deb") bytes, $(dpkg-deb -f "$deb" Installed-Size) KiB installed"
    ;;
esac
