#!/usr/bin/env bash
# Builds whisper-appliance with the `vulkan` feature on Debian 12:
#
#   packaging/build-vulkan.sh           release build -> target/vulkan/release/whisper-appliance
#                                       (its own target dir, so the CPU build in target/ is left alone)
#   packaging/build-vulkan.sh --test    (.ci/test) instead runs tests/gpu_fallback.rs on a debug build
#                                       with the feature, in target/ beside `cargo test`'s, whose
#                                       dependencies it shares: with no usable GPU (as on CI) the binary
#                                       must say so and transcribe on the CPU. It leaves that build in
#                                       target/debug/; the next `cargo test` or `cargo build` puts the
#                                       CPU build back.
#
# whisper.cpp 1.8.3's ggml-vulkan needs newer Vulkan headers (vulkan.hpp) than Debian 12's
# libvulkan-dev 1.3.239, so the headers come from Debian 13 (trixie):
# libvulkan-dev is downloaded with a private apt configuration under
# target/vulkan-sdk/apt (the system's sources and packages are not touched) and unpacked with
# `dpkg -x` into target/vulkan-sdk/; nothing is installed from trixie. At run time the binary uses the
# system's libvulkan.so.1 (Debian 12's libvulkan1, the Vulkan loader), which apt installs here.
# glslc (shader compiler) is Debian 12's own package. Needs root for apt when a package is missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
sdk=$repo/target/vulkan-sdk
say() { echo "== build-vulkan: $*" >&2; }

missing=()
for package in glslc libvulkan1; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || { echo "missing ${missing[*]}; run as root or install them" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$sdk/usr/include/vulkan/vulkan.hpp" ]; then
  say "fetching trixie's Vulkan headers into $sdk"
  apt_dir=$sdk/apt
  rm -rf "$sdk" && mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$apt_dir/sources.list"
  apt=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
       -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
       -o APT::Sandbox::User=root)
  apt-get "${apt[@]}" update -qq
  (cd "$apt_dir/debs" && apt-get "${apt[@]}" download libvulkan-dev/trixie)
  dpkg -x "$apt_dir"/debs/libvulkan-dev_*.deb "$sdk"
  rm -rf "$apt_dir/lists" "$apt_dir/cache"
fi
# The link library is Debian 12's own loader: trixie's needs glibc 2.38. libvulkan-dev's
# libvulkan.so is a link to libvulkan.so.1, which here is the system's (libvulkan1 above).
ln -sfn /usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$sdk/usr/lib/x86_64-linux-gnu/libvulkan.so"
say "headers: VK_HEADER_VERSION $(sed -n 's/^#define VK_HEADER_VERSION \([0-9]*\)$/\1/p' "$sdk/usr/include/vulkan/vulkan_core.h")"

# whisper-rs-sys hands CMAKE_* variables to cmake: CMake's FindVulkan then takes the headers and
# library from the prefix before the system's. The Rust link's -lvulkan searches LIBRARY_PATH too
# (RUSTFLAGS would do, but changing them rebuilds every crate of the target dir).
export CMAKE_PREFIX_PATH=$sdk/usr
export LIBRARY_PATH=$sdk/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}

started=$SECONDS
if [ "${1:-}" = "--test" ]; then
  say "tests/gpu_fallback.rs on a debug build with the vulkan feature (first build: the shaders take a while)"
  cargo test --locked --features vulkan --test gpu_fallback
  say "built and tested in $((SECONDS - started)) s"
else
  say "cargo build --release --features vulkan (first build: the shaders take a while)"
  CARGO_TARGET_DIR=$repo/target/vulkan cargo build --release --locked --features vulkan
  say "built target/vulkan/release/whisper-appliance in $((SECONDS - started)) s"
  target/vulkan/release/whisper-appliance --version
fi
