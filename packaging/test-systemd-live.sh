#!/usr/bin/env bash
# The .deb packages under a real systemd: installed in a throwaway Debian 12 container
# (systemd-nspawn, systemd 252 as PID 1), where packaging/test-install.sh cannot go (there systemd is
# not running, so the maintainer scripts only enable the units).
#
#   packaging/test-systemd-live.sh [--debs DIR] [--root DIR]
#     --debs  the built packages [default: target/debian, from packaging/build-debs.sh]
#     --root  the container's root [default: /var/tmp/whisper-appliance-deb-root; made with debootstrap
#             on first use (about 300 MB, needs the Debian archive), reused afterwards]
#
# Checks: `apt install ./*.deb` starts whisper-appliance.socket and .service; the service runs as whisper in a network
# namespace of its own and answers /readyz through the socket; exposure 0.2; a transcription with an
# API key; a restart; without the model one journal line names the package; reinstalling the model
# restarts the service; reinstalling the main package (the upgrade path) keeps the keys; with the
# vendor drop-in masked the service binds the port itself; purge stops and removes everything. Needs root; not part of .ci/test (it needs the network the first time and
# takes minutes), like .ci/check-systemd-live. The container is powered off at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=.ci/poll.sh
source "$repo/.ci/poll.sh"
debs=$repo/target/debian
root=/var/tmp/whisper-appliance-deb-root
while [ $# -gt 0 ]; do
  case $1 in
    --debs) debs=$(realpath "$2"); shift 2 ;;
    --root) root=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (systemd-nspawn)" >&2; exit 1; }
audio=${WHISPER_APPLIANCE_TEST_AUDIO:-$repo/../shared/audio}

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null
fi
if [ ! -x "$root/lib/systemd/systemd" ]; then
  echo "== debootstrap Debian 12 into $root (first run only)"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,curl,procps \
    bookworm "$root" http://deb.debian.org/debian >"$root.debootstrap.log" 2>&1 ||
    { tail -n 20 "$root.debootstrap.log"; exit 1; }
fi
# A root left by an interrupted run still has the packages: start clean.
chroot "$root" dpkg --purge whisper-appliance whisper-appliance-model-tiny-en >/dev/null 2>&1 || true
cp "$debs"/whisper-appliance_*_amd64.deb "$debs"/whisper-appliance-model-tiny-en_*_all.deb "$audio/jfk.wav" "$root/root/"

# --keep-unit/--register=no: no host systemd needed. The capability and bpf() allowance let the
# container's systemd attach the units' IP firewall (cgroup BPF) as on a host.
systemd-nspawn -D "$root" --private-network --register=no --keep-unit --console=read-only \
  --capability=all --system-call-filter="bpf keyctl add_key request_key" -b >"$root.console.log" 2>&1 &
nspawn_pid=$!
init_pid=""
cleanup() {
  local rc=$?
  if [ -n "$init_pid" ]; then nsenter -t "$init_pid" -a systemctl poweroff >/dev/null 2>&1 || true; fi
  for _ in $(seq 90); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
  kill "$nspawn_pid" 2>/dev/null || true
  wait "$nspawn_pid" 2>/dev/null || true
  rm -f "$root"/root/*.deb "$root/root/jfk.wav"
  exit "$rc"
}
trap cleanup EXIT
for _ in $(seq 100); do init_pid=$(pgrep -P "$nspawn_pid" | head -n1 || true); [ -n "$init_pid" ] && break; sleep 0.2; done
[ -n "$init_pid" ] || { cat "$root.console.log"; echo "FAIL: container did not start"; exit 1; }
ct() { nsenter -t "$init_pid" -a "$@"; }
state=""
for _ in $(seq 60); do
  state=$(ct systemctl is-system-running 2>/dev/null || true)
  [ "$state" = running ] || [ "$state" = degraded ] && break
  sleep 1
done
echo "== container up: $(ct systemctl --version | head -n1), $state"
ready() { ct curl -s --max-time 120 http://127.0.0.1:5000/readyz || true; }
units() { ct systemctl is-active whisper-appliance.socket whisper-appliance.service | paste -sd' ' -; }

# --- install -------------------------------------------------------------------------------------------------
# As README says: apt installs local files and resolves their dependencies (adduser).
ct sh -c 'cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./whisper-appliance_*.deb \
  ./whisper-appliance-model-tiny-en_*.deb' >"$root.dpkg.log" 2>&1 || { cat "$root.dpkg.log"; fail "apt install"; exit 1; }
[ "$(units)" = "active active" ] && pass "apt install ./*.deb started whisper-appliance.socket and .service" || fail "units: $(units)"
enabled=$(ct systemctl is-enabled whisper-appliance.socket whisper-appliance.service | paste -sd' ' -)
[ "$enabled" = "enabled enabled" ] && pass "both enabled" || fail "enabled: $enabled"
got=$(ready)
[[ $got == *'"status":"ready"'* ]] && pass "/readyz through the socket: $got" || fail "/readyz: $got"
pid=$(ct systemctl show -p MainPID --value whisper-appliance.service)
user=$(ct ps -o user= -p "$pid" || true)
[ "$user" = whisper ] && pass "main process $pid runs as whisper" || fail "main process user '$user'"
if [ "$(ct readlink "/proc/$pid/ns/net")" != "$(ct readlink /proc/1/ns/net)" ]; then
  pass "it has a network namespace of its own (PrivateNetwork=yes), yet serves on 127.0.0.1:5000"
else
  fail "the service shares the host's network namespace"
fi
score=$(ct systemd-analyze security whisper-appliance.service --no-pager | sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ "$score" = 0.2 ] && pass "exposure $score" || fail "exposure $score"

key=$(ct runuser -u whisper -- whisper-appliance keys create --name live --role user 2>/dev/null || true)
# The command reached the sandboxed service through its control socket in the state directory: the new
# key works at once, with no polling.
status=$(ct curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" http://127.0.0.1:5000/api/jobs || true)
[ "$status" = 200 ] && pass "a key made with runuser -u whisper -- whisper-appliance keys create works at once" ||
  fail "the new key got $status right after keys create"
sock=$(ct stat -c '%a %U:%G %F' /var/lib/whisper-appliance/control.sock 2>/dev/null || echo missing)
[ "$sock" = "600 whisper:whisper socket" ] && pass "control.sock: $sock" || fail "control.sock: $sock, want 600 whisper:whisper socket"
got=$(ct curl -s --max-time 600 -H "Authorization: Bearer $key" -F file=@/root/jfk.wav -F model=whisper-1 \
  http://127.0.0.1:5000/v1/audio/transcriptions || true)
[[ $got == *"ask not what your country can do for you"* ]] && pass "transcription with an API key: $got" ||
  fail "transcription: $got"

ct systemctl restart whisper-appliance.service
got=$(ready)
[[ $got == *'"status":"ready"'* ]] && pass "restarted; ready again" || fail "after restart: $got"

# --- no model -----------------------------------------------------------------------------------------------------
ct dpkg -r whisper-appliance-model-tiny-en >/dev/null 2>&1
ct systemctl restart whisper-appliance.service 2>/dev/null || true
error_logged() { ct journalctl -u whisper-appliance.service -n 20 --no-pager -o cat | grep -q '^error: '; }
poll 30 error_logged || true
line=$(ct journalctl -u whisper-appliance.service -n 20 --no-pager -o cat | grep '^error: ' | tail -n1)
[[ $line == "error: no model at /usr/share/whisper-appliance/models/ggml-tiny.en.bin; install the whisper-appliance-model-tiny-en package"* ]] &&
  pass "without the model, one journal line: $line" || fail "no-model line: '$line'"
ct sh -c 'cd /root && dpkg -i whisper-appliance-model-tiny-en_*.deb' >/dev/null 2>&1
got=$(ready)
[[ $got == *'"status":"ready"'* ]] && [ "$(units)" = "active active" ] &&
  pass "reinstalling the model restarted the failed service: ready" || fail "after the model came back: $(units) $got"

# --- upgrade path -----------------------------------------------------------------------------------------------------
ct sh -c 'cd /root && dpkg -i whisper-appliance_*.deb' >/dev/null 2>&1
got=$(ready)
keys=$(ct runuser -u whisper -- whisper-appliance keys list 2>/dev/null | grep -c ' live ' || true)
[[ $got == *'"status":"ready"'* ]] && [ "$keys" = 1 ] && pass "reinstalled over itself: restarted, ready, the key kept" ||
  fail "after reinstall: $got, keys $keys"

# --- without socket activation (README.Debian) -----------------------------------------------------------------------
ct mkdir -p /etc/systemd/system/whisper-appliance.service.d
ct ln -s /dev/null /etc/systemd/system/whisper-appliance.service.d/socket-activation.conf
ct systemctl disable --now whisper-appliance.socket >/dev/null 2>&1
ct systemctl daemon-reload
ct systemctl restart whisper-appliance.service
got=$(ready)
pid=$(ct systemctl show -p MainPID --value whisper-appliance.service)
if [[ $got == *'"status":"ready"'* ]] && [ "$(ct readlink "/proc/$pid/ns/net")" = "$(ct readlink /proc/1/ns/net)" ] &&
  [ "$(ct systemctl is-active whisper-appliance.socket)" = inactive ]; then
  pass "socket activation masked: the service binds 127.0.0.1:5000 itself, in the host's namespace"
else
  fail "without socket activation: $got, socket $(ct systemctl is-active whisper-appliance.socket)"
fi
ct rm /etc/systemd/system/whisper-appliance.service.d/socket-activation.conf
ct rmdir /etc/systemd/system/whisper-appliance.service.d

# --- purge -------------------------------------------------------------------------------------------------------------
ct dpkg --purge whisper-appliance whisper-appliance-model-tiny-en >/dev/null 2>&1
load="$(ct systemctl show -p LoadState --value whisper-appliance.service) $(ct systemctl show -p LoadState --value whisper-appliance.socket)"
[ "$load" = "not-found not-found" ] && [ "$(units)" = "inactive inactive" ] && pass "purged: units stopped and gone" ||
  fail "after purge: load $load, $(units)"
left=$(ct sh -c 'getent passwd whisper; getent group whisper; ls -d /var/lib/whisper-appliance /var/cache/whisper-appliance \
  /etc/whisper-appliance /usr/share/whisper-appliance 2>/dev/null; find /etc/systemd /var/lib/systemd -name "*whisper*"' || true)
[ -z "$left" ] && pass "nothing left: user, group, state, cache, config, models, unit links, deb-systemd-helper state" ||
  fail "left after purge: $left"

if [ "$failures" -ne 0 ]; then
  echo "== $failures live check(s) failed"
  exit 1
fi
echo "== live systemd checks of the packages passed"
