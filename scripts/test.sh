#!/usr/bin/env bash
# Every test gochat has, on a fresh machine: installs what is missing (Debian's chromium for
# the browser test, Node.js, playwright-core from npm, protoc, etcd, Redis, PostgreSQL),
# starts a throwaway etcd (and Redis if none answers on 6379, PostgreSQL if none answers on
# 5432) on loopback, then formatting, lints, the Rust suite with every feature on — unit,
# the conformance suites against memory, SQLite, PostgreSQL, Redis and etcd, integration
# over real sockets, doc tests — and the browser end-to-end tests against the real binaries.
# Nothing is skipped: a backend that is not reachable fails.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

source scripts/services.sh
trap gochat_services_stop EXIT
gochat_services_start
echo "== redis $GOCHAT_TEST_REDIS, etcd $GOCHAT_TEST_ETCD, postgres $GOCHAT_TEST_POSTGRES"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo test"
cargo test --workspace --all-features
echo "== fuzzing the wire decoders (15 s each; scripts/fuzz.sh for longer runs)"
FUZZ_SECS=15 scripts/fuzz.sh
echo "== examples, run as their headers say"
scripts/examples.sh
echo "== browser end-to-end, standalone"
scripts/e2e.sh
echo "== browser end-to-end, local cluster (scripts/cluster.sh)"
scripts/e2e-cluster.sh
