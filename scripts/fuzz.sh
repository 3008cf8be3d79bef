#!/usr/bin/env bash
# Fuzz the wire decoders with cargo-fuzz (libFuzzer + AddressSanitizer) for a bounded time
# each — FUZZ_SECS, default 60 — and keep what they find: the corpus in fuzz/corpus/<target>
# (minimised, committed), crashes in fuzz/artifacts/<target> (the script then fails).
# Runs on stable Rust: RUSTC_BOOTSTRAP=1 lets it accept the sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECS:-60}
for target in tcp_frame client_json v2_command; do
  mkdir -p "corpus/$target"
  echo "== fuzzing $target for ${secs}s"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=4096 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target failed (a crash is saved in fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$log" || { tail -20 "$log"; echo "no fuzzing summary"; exit 1; }
  rm -f "$log"
  cargo fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1
  echo "   corpus: $(ls "corpus/$target" | wc -l) inputs"
done
