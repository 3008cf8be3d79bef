#!/usr/bin/env bash
# Soaks that hold connections past every default timeout (not in CI: they take minutes).
#   scripts/soak.sh                  # 3 minutes: WebSocket and TCP readers that only answer
#                                    # keep-alives stay connected with the default ping 54 s /
#                                    # idle 60 s; a silent TCP client is closed at 60 s
#   GOCHAT_SOAK_SECS=600 scripts/soak.sh
# The same test runs in the suite with the timeouts scaled down (tests/liveness.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOCHAT_SOAK_SECS=${GOCHAT_SOAK_SECS:-180}
echo "== liveness with the default timeouts, held ${GOCHAT_SOAK_SECS} s"
cargo test --release --test liveness readers_that_answer_keepalives_stay_and_silent_ones_go -- --nocapture
