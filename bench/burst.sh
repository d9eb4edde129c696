#!/usr/bin/env bash
# Peak memory of `usersvc dev` under a burst of concurrent logins, with the
# default argon2id cost (19 MiB per hash), as recorded in docs/benchmarks.md.
#
#   bench/burst.sh [BINARY] [CONCURRENT]     (default: a fresh build, 200)
#
# Prints the idle RSS, the status counts of the burst and the peak RSS
# (VmHWM). Runs on a free port with a temporary data directory, removed at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
bin=${1:-}
if [ -z "$bin" ]; then bin=$work/usersvc; go build -o "$bin" ./cmd/usersvc; fi
n=${2:-200}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
USERSVC_DATA_DIR=$work/data USERSVC_HTTP_ADDR=127.0.0.1:$port USERSVC_LOG_LEVEL=error \
  USERSVC_RATE_LOGIN_IP=100000/1m USERSVC_RATE_LOGIN_ACCOUNT=100000/1m "$bin" dev 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
curl -sf -XPOST "$url/user" -H 'Content-Type: application/json' \
  -d '{"email":"burst@example.com","password":"correct horse battery staple","name":"B"}' >/dev/null
rss() { awk -v k="$1:" '$1==k {print int($2/1024)}' /proc/$pid/status; }
echo "idle: RSS $(rss VmRSS) MiB, peak so far $(rss VmHWM) MiB"
start=$(date +%s.%N)
seq "$n" | xargs -P "$n" -I{} curl -s -o /dev/null -w '%{http_code}\n' -XPOST "$url/user/token" \
  -H 'Content-Type: application/json' -d '{"email":"burst@example.com","password":"correct horse battery staple"}' \
  | sort | uniq -c | tr '\n' ' '
echo
echo "burst of $n took $(echo "$(date +%s.%N) - $start" | bc) s; peak RSS (VmHWM) $(rss VmHWM) MiB"
