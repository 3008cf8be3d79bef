#!/usr/bin/env bash
# Start the standalone `gochat` on free loopback ports with a throwaway data directory, drive
# its web page in headless Chromium (e2e/*.test.mjs) — with history off, over HTTPS/WSS with
# a certificate made here, then the default — and stop it with SIGTERM, checking that it
# shut down cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
cargo build --quiet --bin gochat

data=$(mktemp -d)
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$data"; }
trap cleanup EXIT

start() { # extra gochat arguments; sets pid and url
  log="$data/gochat-$RANDOM.log"
  target/debug/gochat --data-dir "$data/$RANDOM" --api-addr 127.0.0.1:0 --ws-addr 127.0.0.1:0 \
    --tcp-addr 127.0.0.1:0 --no-site "$@" >"$log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 100); do
    url=$(grep -o 'https\?://[0-9.:]*/' "$log" | head -n1 || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "gochat exited early"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$log"; echo "gochat printed no address"; exit 1; }
  echo "gochat at $url"
}

# The page against a server with history off (gochat's behaviour): live messages only.
printf '[history]\nenabled = false\n' >"$data/no-history.toml"
start --config "$data/no-history.toml"
GOCHAT_URL="$url" GOCHAT_SCREENSHOTS=target/e2e-no-history node --test e2e/chat.test.mjs
kill "$pid"; wait "$pid" || true

# The page over HTTPS and WSS, with a certificate made here for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$data/key.pem" -out "$data/cert.pem" 2>/dev/null
printf '[tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$data/cert.pem" "$data/key.pem" >"$data/tls.toml"
start --config "$data/tls.toml"
case $url in https://*) ;; *) echo "the TLS server printed $url"; exit 1 ;; esac
GOCHAT_URL="$url" GOCHAT_TLS=1 GOCHAT_SCREENSHOTS=target/e2e-tls node --test e2e/chat.test.mjs
kill "$pid"; wait "$pid" || true

start
# chat and history against this server; recovery starts (and kills) servers of its own.
GOCHAT_URL="$url" GOCHAT_BIN=target/debug/gochat GOCHAT_SCREENSHOTS=target/e2e \
  node --test e2e/chat.test.mjs e2e/history.test.mjs e2e/recovery.test.mjs

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "gochat did not stop on SIGTERM"; exit 1; fi
wait "$pid" || { status=$?; cat "$log"; echo "gochat exited with $status after SIGTERM"; exit 1; }
echo "gochat stopped cleanly"
