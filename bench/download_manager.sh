#!/usr/bin/env bash
# `netaccess get` beside `curl --parallel` and `aria2c` as download managers, on loopback nginx:
#   small: 1,000 files of 4 KiB, 6 at a time (netaccess's default per-host limit; curl
#          --parallel-max 6; aria2c -j 6), written to a directory
#   big:   one 1 GiB file (sparse on the server, zeros), netaccess -x 4, aria2c -x 4 -s 4,
#          curl in one request (it has no segmented mode)
# Each run is measured with /usr/bin/time -v (wall, user+sys CPU, peak RSS); the median of
# REPEAT runs (default 5) is printed as a Markdown table. Every run is bounded by a timeout.
# nginx is started here on 127.0.0.1:$PORT (default 28081) from a temp dir, stopped by its pid.
# Usage: bench/download_manager.sh [path/to/netaccess]   (default target/release/netaccess)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NETACCESS="${1:-$HERE/target/release/netaccess}"
PORT="${PORT:-28081}"
REPEAT="${REPEAT:-5}"
LIMIT="${LIMIT:-120}"
NGINX="$(command -v nginx || PATH="$PATH:/usr/sbin" command -v nginx)"
for tool in curl aria2c /usr/bin/time "$NETACCESS"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

RUN="$(mktemp -d -t netaccess-dm-bench.XXXXXX)"
chmod 755 "$RUN"
mkdir -p "$RUN/www/s" "$RUN/tmp"
for i in $(seq -w 0 999); do head -c 4096 /dev/zero > "$RUN/www/s/f$i"; done
truncate -s 1G "$RUN/www/big"
chmod -R a+rX "$RUN/www"
cat "$RUN/www/s/"* > /dev/null
cat > "$RUN/nginx.conf" <<EOF
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid $RUN/nginx.pid;
error_log $RUN/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; default_type application/octet-stream;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 120s; keepalive_requests 100000;
  client_body_temp_path $RUN/tmp/b; proxy_temp_path $RUN/tmp/p; fastcgi_temp_path $RUN/tmp/f;
  uwsgi_temp_path $RUN/tmp/u; scgi_temp_path $RUN/tmp/s;
  server { listen 127.0.0.1:$PORT; root $RUN/www; location / { } }
}
EOF
"$NGINX" -p "$RUN" -e "$RUN/error.log" -c "$RUN/nginx.conf"
stop() {
  if [ -f "$RUN/nginx.pid" ]; then kill -TERM "$(cat "$RUN/nginx.pid")" 2>/dev/null || true; sleep 0.5; fi
  case "$RUN" in */netaccess-dm-bench.*) rm -rf -- "$RUN" ;; esac
}
trap stop EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

BASE="http://127.0.0.1:$PORT"
URLS=()
: > "$RUN/list.txt"; : > "$RUN/curl.cfg"
for i in $(seq -w 0 999); do
  URLS+=("$BASE/s/f$i")
  echo "$BASE/s/f$i" >> "$RUN/list.txt"
  printf 'url = "%s"\noutput = "f%s"\n' "$BASE/s/f$i" "$i" >> "$RUN/curl.cfg"
done

# measure NAME CMD...: runs CMD in a fresh $RUN/out, prints "wall cpu rss_mib ok".
measure() {
  rm -rf "$RUN/out"; mkdir -p "$RUN/out"
  local log="$RUN/time.log"
  if ! (cd "$RUN/out" && timeout "$LIMIT" /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$RUN/err.log"); then
    echo "FAILED: $* ($(tail -3 "$RUN/err.log"))" >&2; echo "nan nan nan 0"; return
  fi
  local wall user sys rss
  wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')"
  user="$(awk -F': ' '/User time/ {print $2}' "$log")"
  sys="$(awk -F': ' '/System time/ {print $2}' "$log")"
  rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")"
  local files bytes
  files="$(find "$RUN/out" -type f | wc -l)"
  bytes="$(find "$RUN/out" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')"
  echo "$wall $(echo "$user + $sys" | bc) $(echo "scale=1; $rss / 1024" | bc) $files:$bytes"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

row() { # row LABEL CMD...
  local label="$1"; shift
  local walls=() cpus=() rsss=() check=""
  for _ in $(seq 1 "$REPEAT"); do
    read -r w c r k < <(measure "$@")
    walls+=("$w"); cpus+=("$c"); rsss+=("$r"); check="$k"
  done
  printf '| %s | %s | %s | %s | %s |\n' "$label" \
    "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" \
    "$(printf '%s\n' "${rsss[@]}" | median)" "$check"
}

echo "| run | wall s (median of $REPEAT) | CPU s (user+sys) | peak RSS MiB | files:bytes |"
echo "|---|---|---|---|---|"
row "1,000 x 4 KiB: netaccess get -o (6 per host)" \
  "$NETACCESS" get -q --no-cache -o . "${URLS[@]}"
row "1,000 x 4 KiB: curl --parallel --parallel-max 6" \
  curl -s --parallel --parallel-max 6 -K "$RUN/curl.cfg"
row "1,000 x 4 KiB: aria2c -j 6" \
  aria2c -q -j 6 --file-allocation=none -i "$RUN/list.txt" -d .
row "1 GiB: netaccess get -x 4" \
  "$NETACCESS" get -q --no-cache -x 4 -o . "$BASE/big"
row "1 GiB: aria2c -x 4 -s 4" \
  aria2c -q -x 4 -s 4 -d . "$BASE/big"
row "1 GiB: curl (one request)" \
  curl -s -o big "$BASE/big"
row "1 GiB: netaccess get (one request)" \
  "$NETACCESS" get -q --no-cache -o . "$BASE/big"
