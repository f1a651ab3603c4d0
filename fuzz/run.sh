#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS each (libFuzzer via cargo-fuzz), starting from the
# committed seeds plus the working corpus in fuzz/corpus/, and prints executions and coverage
# per target. A crash stops the run with its artifact under fuzz/artifacts/<target>/: turn it
# into a regression test in the normal test suite (tests/adversarial.rs or the unit tests).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
# FUZZ_SEEDS_ONLY=1 (CI): use the committed seeds as they are, without regenerating them.
SEEDS_ONLY_CHECK="${FUZZ_SEEDS_ONLY:-0}"
TARGETS="${FUZZ_TARGETS:-token jwt jwks config policy plan path request_info gate}"
CARGO="${CARGO:-cargo}"
# cargo-fuzz needs nightly-only flags (-Zsanitizer, sancov passes); the toolchain here is
# stable, and RUSTC_BOOTSTRAP=1 unlocks them.
export RUSTC_BOOTSTRAP=1
if [ "$SEEDS_ONLY_CHECK" != 1 ]; then
  python3 seeds/make_seeds.py >/dev/null 2>&1 || true
fi
mkdir -p logs
"$CARGO" fuzz build -O >/dev/null
summary=()
for target in $TARGETS; do
  mkdir -p "corpus/$target" "seeds/$target"
  log="logs/$target.log"
  # Every committed seed once first: a stale invariant or a crash on a known input fails
  # here, before any random search.
  if ! "$CARGO" fuzz run -O "$target" "seeds/$target" -- -runs=0 -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target FAILED on a committed seed (artifact in fuzz/artifacts/$target/)"
    exit 1
  fi
  echo "== fuzz $target: $(find "seeds/$target" -type f | wc -l) seeds pass; fuzzing for ${SECONDS_PER_TARGET}s"
  if ! "$CARGO" fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target FAILED (artifact in fuzz/artifacts/$target/)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  summary+=("$(printf '%-8s executions %-10s %-22s corpus %s' "$target" "${runs:-?}" "${cov:-cov: ?}" "$corpus")")
done
echo "== fuzz summary (${SECONDS_PER_TARGET}s per target)"
printf '%s\n' "${summary[@]}"
