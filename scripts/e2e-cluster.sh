#!/usr/bin/env bash
# The browser test against a local cluster of separate processes (scripts/cluster.sh, debug
# build, state in a temporary directory), then `down`, checking nothing it started is left.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOCHAT_CLUSTER_DIR GOCHAT_CLUSTER_PROFILE=debug GOCHAT_CLUSTER_SCHEMA=gochat_e2e_$$
GOCHAT_CLUSTER_DIR=$(mktemp -d)
drop_schema() { # on the machine's PostgreSQL, the run's schema would otherwise stay
  psql postgres://postgres@127.0.0.1:5432/test -XAtqc "DROP SCHEMA IF EXISTS $GOCHAT_CLUSTER_SCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap 'scripts/cluster.sh down >/dev/null || true; drop_schema; rm -rf "$GOCHAT_CLUSTER_DIR"' EXIT
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
scripts/cluster.sh up
url=$(awk '/^page:/ {print $2}' "$GOCHAT_CLUSTER_DIR/urls")
pids=$(awk '{print $2}' "$GOCHAT_CLUSTER_DIR/pids")
# The crash test (e2e/recovery.test.mjs) is the standalone binary's: scripts/e2e.sh runs it.
GOCHAT_URL="$url" GOCHAT_SCREENSHOTS=target/e2e-cluster node --test e2e/chat.test.mjs e2e/history.test.mjs
scripts/cluster.sh down
for pid in $pids; do
  if kill -0 "$pid" 2>/dev/null; then echo "process $pid outlived 'cluster.sh down'"; exit 1; fi
done
echo "cluster stopped cleanly"
