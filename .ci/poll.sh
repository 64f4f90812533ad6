# shellcheck shell=bash
# Sourced by the CI and packaging scripts: wait for a condition, never a fixed time, so a slow
# machine only makes a check take longer, and a fast one does not wait for nothing.
#
# poll SECONDS COMMAND [ARG...]: runs COMMAND every 0.2 s until it succeeds; returns 1 once
# SECONDS have passed without success.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
