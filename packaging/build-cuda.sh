#!/usr/bin/env bash
# Builds whisper-appliance with the `cuda` feature on Debian 12 and packs it as whisper-appliance-cuda:
#
#   packaging/build-cuda.sh            -> target/cuda/release/whisper-appliance
#   packaging/build-cuda.sh --deb      ... and target/cuda/debian/whisper-appliance-cuda_*.deb
#
# Debian 12 has no CUDA toolkit, so nvcc and the rest come from NVIDIA's PyPI wheels for CUDA 13
# (nvidia-cuda-nvcc, -cuda-crt, -nvvm, -cuda-runtime, -cublas, -cuda-cccl; the CUDA 12 nvcc wheel
# carries ptxas but no nvcc). They install into one toolkit-shaped folder, site-packages/nvidia/cu13
# (bin, include, lib, nvvm), inside a venv under target/cuda-sdk/; nothing is installed system-wide.
# The wheels do not carry the driver's libcuda.so, which whisper-rs-sys links (ggml-cuda calls the
# driver API), so the binary is linked against the installed NVIDIA driver's libcuda.so.1 (Debian
# non-free's libcuda1, or the GPU host's driver); without one the script stops after showing that
# nvcc compiles a kernel, with exit status 3.
#
# CMAKE_CUDA_ARCHITECTURES (default "75;86;89": Turing, Ampere, Ada; "native" on a GPU host) keeps
# the kernel build short; every architecture listed multiplies it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
sdk=$repo/target/cuda-sdk
toolkit=$sdk/cuda
say() { echo "== build-cuda: $*" >&2; }

if [ ! -x "$toolkit/bin/nvcc" ]; then
  say "installing nvcc, the CUDA runtime and cuBLAS (CUDA 13) from PyPI into $sdk/venv"
  rm -rf "$sdk" && python3 -m venv "$sdk/venv"
  "$sdk/venv/bin/pip" install --quiet "nvidia-cuda-nvcc==13.*" "nvidia-cuda-crt==13.*" "nvidia-nvvm==13.*" \
    "nvidia-cuda-runtime==13.*" "nvidia-cublas==13.*" "nvidia-cuda-cccl==13.*"
  ln -sfn "$("$sdk/venv/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))')/nvidia/cu13" "$toolkit"
  # The wheels carry only versioned names (libcudart.so.13); the linker looks for libcudart.so.
  for lib in "$toolkit"/lib/*.so.*; do
    base=${lib%%.so.*}.so
    [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
  done
fi
"$toolkit/bin/nvcc" --version | tail -n2
# nvcc with Debian 12's g++ 12 as the host compiler, on the lowest architecture we build for.
printf '__global__ void add(float *x) { x[threadIdx.x] += 1.0f; }\nint main() { return 0; }\n' >"$sdk/check.cu"
"$toolkit/bin/nvcc" -arch=sm_75 -o "$sdk/check" "$sdk/check.cu"
say "nvcc compiles and links a kernel"

driver=$(ls /usr/lib/x86_64-linux-gnu/libcuda.so.1 2>/dev/null || true)
if [ -z "$driver" ]; then
  echo "no libcuda.so.1 (the NVIDIA driver's library) here: nvcc works, but the binary cannot be linked;" \
       "install the driver's libcuda1 package (Debian non-free) or run this on the GPU host" >&2
  exit 3
fi
ln -sf "$driver" "$toolkit/lib/libcuda.so"
# whisper-rs-sys also asks for culibos, a static helper of the full toolkit that only the static
# CUDA runtime needs; we link the shared one, so an empty archive satisfies the request.
[ -f "$toolkit/lib/libculibos.a" ] || ar rc "$toolkit/lib/libculibos.a"

export CUDA_PATH=$toolkit CUDAToolkit_ROOT=$toolkit
export CMAKE_CUDA_COMPILER=$toolkit/bin/nvcc
export CMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES:-75;86;89}
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$toolkit/lib"
export CARGO_TARGET_DIR=$repo/target/cuda
started=$(date +%s)
say "cargo build --release --features cuda (architectures $CMAKE_CUDA_ARCHITECTURES)"
cargo build --release --locked --features cuda
say "built target/cuda/release/whisper-appliance in $(($(date +%s) - started)) s"

if [ "${1:-}" = "--deb" ]; then
  command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
  cargo deb --no-build --variant cuda --output target/cuda/debian/
fi
