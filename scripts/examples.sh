#!/usr/bin/env bash
# Runs the examples as their headers say, against real servers on free loopback ports:
# two terminal chat clients (WebSocket and TCP) talking to each other, and the embedding
# example's own routes beside gochat's.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin gochat --examples
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; exec 3>&- 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file pattern
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:"; cat "$1"; return 1
}

api=$(port); ws=$(port); tcp=$(port)
target/debug/gochat --data-dir "$work/data" --api-addr "127.0.0.1:$api" --ws-addr "127.0.0.1:$ws" \
  --tcp-addr "127.0.0.1:$tcp" --no-site >"$work/gochat.log" 2>&1 &
pids+=($!)
wait_for "$work/gochat.log" "gochat is running"

echo "== examples/chat.rs: a WebSocket user and a TCP user"
mkfifo "$work/a.in"
target/debug/examples/chat --api "127.0.0.1:$api" --ws "127.0.0.1:$ws" --user demo --password 111111 \
  <"$work/a.in" >"$work/a.out" 2>&1 &
pids+=($!)
exec 3>"$work/a.in" # keep demo's stdin open
wait_for "$work/a.out" "signed in as demo"
{ sleep 1; echo "hello from a terminal"; echo "/to demo psst"; echo "/join 7"; echo "in room seven";
  echo "/history"; sleep 1; echo "/quit"; } |
  target/debug/examples/chat --api "127.0.0.1:$api" --tcp "127.0.0.1:$tcp" --user test --password 111111 >"$work/b.out" 2>&1
wait_for "$work/a.out" "\[room 1\] #[0-9]* test: hello from a terminal"
wait_for "$work/a.out" "\[private\] #[0-9]* test → demo: psst"
wait_for "$work/b.out" "\[room 1\] #[0-9]* test: hello from a terminal"
wait_for "$work/b.out" "\[now in room 7\]"
# Shown once as posted, once more by /history.
[ "$(grep -c '\[room 7\] #1 test: in room seven' "$work/b.out")" = 2 ] || { cat "$work/b.out"; exit 1; }
echo "hi test" >&3
echo "/quit" >&3
exec 3>&-
grep -q "signed in as test" "$work/b.out"
echo "chat: ok"

echo "== examples/embed_routes.rs"
app=$(port); api2=$(port); ws2=$(port); tcp2=$(port)
target/debug/examples/embed_routes --app "127.0.0.1:$app" --api "127.0.0.1:$api2" --ws "127.0.0.1:$ws2" \
  --tcp "127.0.0.1:$tcp2" --data-dir "$work/data2" >"$work/embed.log" 2>&1 &
embed=$!
pids+=($embed)
wait_for "$work/embed.log" "app: http"
curl -fsS "127.0.0.1:$app/status" | grep -q '"connections":0'
curl -fsS -X POST "127.0.0.1:$app/announce" -d 'hello' | grep -q announced
curl -fsS -X POST "127.0.0.1:$api2/user/login" -d '{"userName":"demo","passWord":"111111"}' | grep -q '"code":0'
kill -INT "$embed"
for _ in $(seq 100); do kill -0 "$embed" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$embed" 2>/dev/null || { echo "embed_routes did not stop on ctrl-c"; exit 1; }
echo "embed_routes: ok"
