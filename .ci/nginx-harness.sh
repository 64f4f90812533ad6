# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the scripts that source this file
# A throwaway nginx that serves the shipped whisper-appliance site, for .ci/check-nginx (the repository's
# files, against a stand-in or a real appliance) and packaging/test-install.sh (the files the .deb
# installed, against the installed appliance). Sourced, not run; bash with `set -euo pipefail`.
#
#   nginx_harness_tools                 installs nginx, openssl, curl, apache2-utils, python3 if missing
#   nginx_harness_init                  temp dir, three free ports, a certificate, an htpasswd file
#   nginx_harness_start SITE SNIPPETS UPSTREAM_PORT
#                                       the site file and the whisper-appliance-*.conf snippets from the
#                                       directory SNIPPETS, with only these strings replaced (each must be
#                                       found, or it fails): the listen addresses (free high ports on
#                                       127.0.0.1; the [::] lines are dropped), certificate and key paths
#                                       (a throwaway EC certificate for $name), the htpasswd path (user
#                                       $user), the snippet include paths and the upstream port (in the
#                                       upstream snippet; UPSTREAM_PORT "-" leaves that snippet as it is,
#                                       for a caller whose snippet already names its appliances); then
#                                       `nginx -t` (a failure or warning fails) and a live nginx
#   nginx_harness_stop                  kills nginx, removes the temp dir (call it from an EXIT trap)
#
# The test nginx.conf keeps Debian's http{} defaults that matter (ssl_protocols with TLSv1/TLSv1.1,
# gzip on), so the site is tested as it will run, and adds one test-only "control" server that does
# allow TLS 1.1. Runs as root on Debian 12 (nginx workers run as nobody then).
#
# After start: $tmp, $name, $user, $password, $http_port, $https_port, $control_port, $base (the
# site's https URL), and these helpers: pass/fail/skip LABEL (count into $failures), req [curl args]
# URL (status in $code, headers in $tmp/h, body in $tmp/b), header NAME, headers_once LABEL,
# s_client PORT [openssl args], and the checks nginx_check_redirects and nginx_check_tls.

name=whisper.example.org
user=alice
password='correct horse battery staple'
failures=0
nginx_pid=""
tmp=""

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }
skip() { echo "skip: $*"; }

nginx_harness_tools() {
  local missing=() created_policy="" rc=0
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "missing ${missing[*]}; run as root or install them" >&2; exit 1; }
    echo "== installing ${missing[*]}"
    # Debian's nginx package starts its service on install; policy-rc.d (exit 101) forbids that, so
    # installing for a check leaves nothing listening on port 80. Only a file this script created is removed.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
      created_policy=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"; } >/tmp/check-nginx-apt.log 2>&1 || rc=$?
    [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || { cat /tmp/check-nginx-apt.log >&2; exit 1; }
  fi
  PATH=$PATH:/usr/sbin
  echo "== $(nginx -v 2>&1), $(openssl version | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2)"
}

nginx_harness_init() {
  tmp=$(mktemp -d)
  chmod 0755 "$tmp" # nginx workers (nobody when run as root) read the htpasswd file in here
  read -r http_port https_port control_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
  mkdir -p "$tmp/tls" "$tmp/snippets" "$tmp/temp"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
    -keyout "$tmp/tls/key.pem" -out "$tmp/tls/cert.pem" 2>/dev/null
  htpasswd -B -b -c "$tmp/htpasswd" "$user" "$password" 2>/dev/null
  chmod 0644 "$tmp/htpasswd"
}

nginx_harness_stop() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; fi
  nginx_pid=""
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}

nginx_harness_start() {
  local site=$1 snippets=$2 upstream_port=$3 out
  cp "$snippets"/whisper-appliance-*.conf "$tmp/snippets/"
  python3 - "$site" "$tmp/site.conf" <<EOF
import sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
replacements = [
    ("    listen 80;\n", "    listen 127.0.0.1:$http_port;\n"),
    ("    listen [::]:80;\n", ""),
    ("    listen 443 ssl http2;\n", "    listen 127.0.0.1:$https_port ssl http2;\n"),
    ("    listen [::]:443 ssl http2;\n", ""),
    ("/etc/ssl/certs/whisper-appliance.crt", "$tmp/tls/cert.pem"),
    ("/etc/ssl/private/whisper-appliance.key", "$tmp/tls/key.pem"),
    ("/etc/whisper-appliance/htpasswd", "$tmp/htpasswd"),
    ("include snippets/", "include $tmp/snippets/"),
]
for old, new in replacements:
    if old not in text:
        sys.exit(f"nginx harness: {src} no longer contains {old!r}; update the substitutions")
    text = text.replace(old, new)
open(dst, "w").write(text)
EOF
  if [ "$upstream_port" != - ]; then
    python3 - "$tmp/snippets/whisper-appliance-upstream.conf" <<EOF
import sys
path = sys.argv[1]
text = open(path).read()
old = "server 127.0.0.1:5000;"
if old not in text:
    sys.exit(f"nginx harness: {path} no longer contains {old!r}; update the substitutions")
open(path, "w").write(text.replace(old, "server 127.0.0.1:$upstream_port;"))
EOF
  fi

  {
    [ "$(id -u)" -eq 0 ] && echo "user nobody nogroup;"
    cat <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    # Debian 12's http{} defaults (/etc/nginx/nginx.conf), so the site must override them itself.
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
    access_log $tmp/access.log;
    client_body_temp_path $tmp/temp/body;
    proxy_temp_path $tmp/temp/proxy;
    fastcgi_temp_path $tmp/temp/fastcgi;
    uwsgi_temp_path $tmp/temp/uwsgi;
    scgi_temp_path $tmp/temp/scgi;

    include $tmp/site.conf;

    # TEST ONLY, not shipped: a server that does allow TLS 1.1 at OpenSSL security level 0. The same
    # client command succeeding here and failing on the site shows the refusal is the site's.
    server {
        listen 127.0.0.1:$control_port ssl;
        server_name control.invalid;
        ssl_certificate $tmp/tls/cert.pem;
        ssl_certificate_key $tmp/tls/key.pem;
        ssl_protocols TLSv1.1 TLSv1.2;
        ssl_ciphers DEFAULT:@SECLEVEL=0;
        return 200 "control\n";
    }
}
EOF
  } >"$tmp/nginx.conf"

  echo "-- nginx -t on $site + snippets from $snippets (paths substituted)"
  if out=$(nginx -t -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" 2>&1); then
    pass "nginx -t: $(printf '%s' "$out" | tail -n1 | sed 's/^nginx: //')"
  else
    printf '%s\n' "$out"
    fail "nginx -t"
    exit 1
  fi
  if printf '%s' "$out" | grep -q '\[warn\]'; then
    printf '%s\n' "$out" | grep '\[warn\]'
    fail "nginx -t printed warnings"
  fi

  nginx -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" &
  nginx_pid=$!
  for _ in $(seq 50); do
    curl -so /dev/null --max-time 1 "http://127.0.0.1:$http_port/" && break
    sleep 0.1
  done
  echo "-- live: nginx on http://127.0.0.1:$http_port, https://127.0.0.1:$https_port ($name)"
  base="https://$name:$https_port"
}

# req [curl args] URL: status in $code, headers in $tmp/h, body in $tmp/b
req() {
  code=$(curl -sS --http1.1 --max-time 120 --cacert "$tmp/tls/cert.pem" --resolve "$name:$https_port:127.0.0.1" \
    -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' "$@") || code="curl-error"
}
header() { { grep -i "^$1:" "$tmp/h" || true; } | head -n1 | cut -d: -f2- | sed 's/^ //; s/\r$//'; }

security_headers=(Content-Security-Policy X-Content-Type-Options X-Frame-Options Referrer-Policy
  Permissions-Policy Cross-Origin-Opener-Policy Cross-Origin-Resource-Policy Strict-Transport-Security)
# headers_once LABEL: every security header exactly once, with nginx's values (not the upstream copies).
headers_once() {
  local h n bad=""
  for h in "${security_headers[@]}"; do
    n=$(grep -ci "^$h:" "$tmp/h" || true)
    [ "$n" -eq 1 ] || bad="$bad $h×$n"
  done
  [ "$(header Content-Security-Policy)" = "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" ] ||
    bad="$bad CSP=[$(header Content-Security-Policy)]"
  [ "$(header X-Frame-Options)" = "DENY" ] || bad="$bad XFO=[$(header X-Frame-Options)]"
  [ "$(header Strict-Transport-Security)" = "max-age=63072000; includeSubDomains" ] || bad="$bad HSTS=[$(header Strict-Transport-Security)]"
  if [ -z "$bad" ]; then pass "$1: all ${#security_headers[@]} security headers, once each"; else fail "$1: headers:$bad"; fi
}

# s_client PORT [openssl args]: prints the negotiated protocol and cipher, or nothing if the handshake failed.
s_client() {
  local port=$1; shift
  openssl s_client -brief -connect "127.0.0.1:$port" -servername "$name" "$@" </dev/null 2>&1 |
    sed -n 's/^Protocol version: //p; s/^Ciphersuite: //p' | paste -sd' ' - || true
}

# HTTP -> HTTPS with 308, path and query kept, always to the configured name.
nginx_check_redirects() {
  code=$(curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{redirect_url}' -H "Host: $name" \
    "http://127.0.0.1:$http_port/jobs/42?format=srt&lang=en") || code="curl-error"
  if [ "$code" = "308 https://$name/jobs/42?format=srt&lang=en" ]; then
    pass "http -> 308 https://$name/jobs/42?format=srt&lang=en (path and query kept)"
  else
    fail "http redirect: got '$code'"
  fi
  code=$(curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{redirect_url}' -H "Host: evil.example" \
    -X POST -d x=1 "http://127.0.0.1:$http_port/api/jobs") || code="curl-error"
  [ "$code" = "308 https://$name/api/jobs" ] && pass "http POST with a foreign Host -> 308 to the configured name" ||
    fail "http POST redirect: got '$code'"
}

# TLS 1.1 refused, TLS 1.2 (AEAD only) and 1.3 accepted.
nginx_check_tls() {
  local control site got
  # OpenSSL 3 (Debian 12) refuses TLS 1.1 itself at the default security level, on both ends; SECLEVEL=0
  # lets the client offer it, and the control server (TLS 1.1 allowed, SECLEVEL=0) shows it then works,
  # so a failure against the site is the site's ssl_protocols, not OpenSSL's defaults.
  control=$(s_client "$control_port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
  site=$(s_client "$https_port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
  if [[ $control == TLSv1.1* ]] && [ -z "$site" ]; then
    pass "TLS 1.1 refused by the site (the same client gets '$control' from a TLS 1.1 control server)"
  else
    fail "TLS 1.1: site '$site', control '$control'"
  fi
  got=$(s_client "$https_port" -tls1_2)
  [[ $got == "TLSv1.2 ECDHE-ECDSA-"*GCM* || $got == "TLSv1.2 ECDHE-ECDSA-CHACHA20"* ]] &&
    pass "TLS 1.2 accepted: $got" || fail "TLS 1.2: '$got'"
  got=$(s_client "$https_port" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0')
  [ -z "$got" ] && pass "TLS 1.2 with CBC ciphers only: refused (not in Mozilla intermediate)" || fail "TLS 1.2 CBC: '$got'"
  got=$(s_client "$https_port" -tls1_3)
  [[ $got == TLSv1.3* ]] && pass "TLS 1.3 accepted: $got" || fail "TLS 1.3: '$got'"
}
