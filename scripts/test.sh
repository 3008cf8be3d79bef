#!/usr/bin/env bash
# Every test gochat has, on a fresh machine: installs what is missing (Debian's chromium for
# the browser test, Node.js, playwright-core from npm), then formatting, lints, the Rust
# suite (unit, conformance, integration over real sockets and SQLite files, doc tests) and
# the browser end-to-end test against the real `gochat` binary.
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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== browser end-to-end"
scripts/e2e.sh
