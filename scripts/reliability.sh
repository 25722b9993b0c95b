#!/usr/bin/env bash
# Runs the reliability tests (SPEC.md §16) and prints their counts: kill
# points tried, faults injected, corruptions tried, fuzz executions.
#
# CI runs the same tests with their default, bounded budgets. For longer runs:
#   CAIRN_CRASH_RANDOM=500   random kill moments for backups (default 6)
#   CAIRN_CRASH_SEED=N       repeat a random-kill run (its seed is printed)
#   CAIRN_CORRUPT_ROUNDS=20  sets of random byte flips per file (default 1)
#   CAIRN_CORRUPT_SEED=N     repeat a corruption run (its seed is printed)
#   CAIRN_FUZZ_SECONDS=600   smoke-fuzzing time per decoder (default ~1.5 s)
# and, for coverage-guided fuzzing, fuzz/run-all.sh (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p cairn-cli
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test -p cairn-tests --test e2e -- crash:: faults:: corruption:: \
  hostile_repo:: restore_race:: deep_trees:: hostile_sources:: prune:: --nocapture >"$log" 2>&1 || status=$?
cargo test -p cairn-format --test fuzz_smoke -- --nocapture >>"$log" 2>&1 || status=$?
grep -E 'tree shared at|killed at|killed before|system call errors|corruption: seed|random kills|faults injected|read faults|corruptions tried|stopped at each|executions|files recorded|test result' "$log" || true
if [ "$status" -ne 0 ]; then
  grep -E -A5 'panicked|FAILED' "$log" || true
  echo "reliability tests FAILED" >&2
fi
exit "$status"
