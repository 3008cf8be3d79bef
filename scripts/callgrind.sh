#!/usr/bin/env bash
# Instructions per private message, counted by callgrind: repeatable on this noisy box where
# wall-clock ratios are not (docs/performance.md). Not in CI: a run takes ~1 minute.
#   scripts/callgrind.sh                       # target/release/gochat, 3 000 messages
#   GOCHAT_BIN=/tmp/gochat-old scripts/callgrind.sh   # another build, to compare
#   MESSAGES=6000 KEEP=/tmp/cg scripts/callgrind.sh   # keep the per-thread profiles
# Prints the server's instructions per message (every thread, password hashing left out: it
# is what registration costs, not a message) and the SQLite writer thread's alone. The
# writer's batches are small under callgrind's slowness (~3 messages), so per-transaction
# costs weigh more here than in a real run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install -y valgrind)" >&2; exit 1; }
cargo build --release --quiet --bin gochat --bin gochat-bench
bin=${GOCHAT_BIN:-target/release/gochat}
messages=${MESSAGES:-3000}
work=$(mktemp -d)
pid=""
out=${KEEP:-$work}/cg
mkdir -p "$(dirname "$out")"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for port in 17070 17000; do
  if ss -Hltn "( sport = :$port )" | grep -q .; then echo "port $port is taken" >&2; exit 1; fi
done
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out.%p" \
  "$bin" --config benches/bench-server.toml --data-dir "$work/data" \
  --api-addr 127.0.0.1:17070 --ws-addr 127.0.0.1:17000 --no-tcp >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do curl -s -o /dev/null http://127.0.0.1:17070/ && break; sleep 0.2; done
target/release/gochat-bench --api 127.0.0.1:17070 --ws 127.0.0.1:17000 \
  private --users 100 --messages "$messages" --senders 32 2>/dev/null |
  grep -o '"delivered":[0-9]*,"lost":[0-9]*,"duplicates":[0-9]*'
kill "$pid"; wait "$pid" 2>/dev/null || true
total=0 hashing=0 writer=0
for f in "$out".*-*; do
  summary=$(awk '/^summary:/ {print $2; exit}' "$f")
  tree=$(callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null)
  h=$(grep -m1 'argon2::Argon2::hash_password_into' <<<"$tree" | awk '{gsub(",", "", $1); print $1}' || true)
  total=$((total + summary)); hashing=$((hashing + ${h:-0}))
  grep -q 'sqlite::writer::Write<F,R> as .*Pending>::run' <<<"$tree" && writer=$((writer + summary))
done
echo "server instructions per message (password hashing left out): $(((total - hashing) / messages))"
echo "SQLite writer thread's instructions per message: $((writer / messages))"
