#!/usr/bin/env bash
# `netaccess get` beside `curl --parallel` and `aria2c` on a local nginx (issue 14):
#   small: 1,000 files of 16 KiB from one list, 6 at a time (netaccess -i, curl -Z
#          --parallel-max 6, aria2c -i -j 6);
#   big:   one 1 GiB file over one connection (and aria2c -x 4 for reference).
# Each run is timed with /usr/bin/time (wall, user + system CPU, peak RSS); the table is the
# median of REPEAT runs. Only 127.0.0.1 is contacted.
#
#   bench/cli-downloads.sh                  # builds the release binary first
#   NETACCESS_BIN=path REPEAT=5 bench/cli-downloads.sh
set -euo pipefail

repeat=${REPEAT:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${NETACCESS_BIN:-}
if [[ -z $bin ]]; then
    (cd "$here" && cargo build --release -p netaccess-cli >/dev/null)
    bin=$here/target/release/netaccess
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)
for tool in "$nginx" curl aria2c /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

work=$(mktemp -d)
nginx_pid=
cleanup() {
    [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/root/small" "$work/out"
head -c 16384 /dev/urandom >"$work/one"
for i in $(seq 1 1000); do cp "$work/one" "$work/root/small/f$i.bin"; done
head -c $((1 << 30)) /dev/urandom >"$work/root/big.bin"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<EOF
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path $work/t1; proxy_temp_path $work/t2; fastcgi_temp_path $work/t3;
  uwsgi_temp_path $work/t4; scgi_temp_path $work/t5;
  server { listen 127.0.0.1:$port; root $work/root; }
}
EOF
"$nginx" -p "$work" -c "$work/nginx.conf" &
nginx_pid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/big.bin" -r 0-0 && break
    sleep 0.1
done

base=http://127.0.0.1:$port
for i in $(seq 1 1000); do echo "$base/small/f$i.bin"; done >"$work/list.txt"
sed 's/.*/url = "&"/' "$work/list.txt" >"$work/curl.cfg"

# run NAME CMD...: REPEAT timed runs into a fresh output directory; prints the median line.
run() {
    local name=$1
    shift
    local results=()
    for _ in $(seq 1 "$repeat"); do
        rm -rf "$work/out" && mkdir -p "$work/out"
        /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" ||
            { echo "$name failed:" >&2; cat "$work/err" >&2; exit 1; }
        results+=("$(cat "$work/time")")
    done
    printf '%s\n' "${results[@]}" | sort -n | awk -v name="$name" -v n="$repeat" '
        NR == int((n + 1) / 2) { printf "| %s | %.2f | %.2f | %.1f |\n", name, $1, $2 + $3, $4 / 1024 }'
}

echo "| run | wall s | CPU s (user + sys) | peak RSS MiB |"
echo "| --- | --- | --- | --- |"
run "small: netaccess get -i (6 per host)" "$bin" get -q -o "$work/out" -i "$work/list.txt"
run "small: curl -Z --parallel-max 6" curl -s -Z --parallel-max 6 --remote-name-all \
    --output-dir "$work/out" -K "$work/curl.cfg"
run "small: aria2c -i -j 6" aria2c -q -i "$work/list.txt" -d "$work/out" -j 6 -x 1 \
    --allow-overwrite=true --auto-file-renaming=false
run "big: netaccess get (1 connection)" "$bin" get -q -o "$work/out" "$base/big.bin"
run "big: curl (1 connection)" curl -s -o "$work/out/big.bin" "$base/big.bin"
run "big: aria2c -x 1" aria2c -q -d "$work/out" -x 1 -s 1 --allow-overwrite=true \
    --file-allocation=none "$base/big.bin"
run "big: aria2c -x 4" aria2c -q -d "$work/out" -x 4 -s 4 -k 1M --allow-overwrite=true \
    --file-allocation=none "$base/big.bin"
