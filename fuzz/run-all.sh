#!/usr/bin/env bash
# Runs every cairn-format fuzz target, one after another (never in parallel),
# for N seconds each, and prints how many inputs each one executed.
#
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]
#   SECONDS  fuzzing time per target (default 30; build time not included)
#   TARGET   targets to run (default: every target `cargo fuzz list` shows)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# FUZZ_TOOLCHAIN overrides the toolchain (default: nightly).
# Logs go to fuzz/artifacts/logs/<target>.log, crashing inputs to
# fuzz/artifacts/<target>/. Seeds are generated first if fuzz/corpus is missing.
# Exit status: 0 all ran clean, 1 some target crashed, 2 usage or build error.
set -u

cd "$(dirname "$0")"
secs="${1:-30}"
[ $# -gt 0 ] && shift
case "$secs" in
  '' | *[!0-9]*) echo "run-all.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "+$toolchain" fuzz list | grep -vx 'make_seeds')
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "run-all.sh: no fuzz targets found" >&2
  exit 2
fi

mkdir -p artifacts/logs
echo "building fuzz targets (log: artifacts/logs/build.log)..."
if ! cargo "+$toolchain" fuzz build >artifacts/logs/build.log 2>&1; then
  tail -n 30 artifacts/logs/build.log >&2
  echo "run-all.sh: build failed" >&2
  exit 2
fi

# `cargo fuzz build` builds the seed generator too; use it when there are no seeds yet.
if [ ! -d corpus ]; then
  host="$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')"
  ASAN_OPTIONS=detect_odr_violation=0 "target/$host/release/make_seeds" corpus || exit 2
fi

failed=()
printf '%-12s %8s %14s %10s  %s\n' target seconds executions exec/s result
for t in "${targets[@]}"; do
  log="artifacts/logs/$t.log"
  cargo "+$toolchain" fuzz run "$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  # libFuzzer's final stats (-print_final_stats=1), else its closing "#<N>	DONE" line.
  execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  [ -n "$execs" ] || execs="$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="CRASH (exit $rc, see $log)"
    failed+=("$t")
  fi
  printf '%-12s %8s %14s %10s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "$result"
  if [ "$rc" -ne 0 ]; then
    # The panic location and message (next line), sanitizer summary, and the saved input.
    grep -E -A1 "panicked at" "$log" | head -n 2 | sed 's/^/    /'
    grep -E "^==[0-9]+==ERROR|^SUMMARY:|Test unit written to" "$log" | head -n 4 | sed 's/^/    /'
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]}" >&2
  exit 1
fi
echo "all ${#targets[@]} targets ran ${secs}s each without a crash"
