#!/usr/bin/env bash
# Build every libFuzzer target with clang and run each for SECONDS (default 60).
# Crashes are kept in fuzz/artifacts/; corpora grow in fuzz/corpus/NAME/.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
seconds=${1:-60}
shift || true
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DMAILPOLICY_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(find "$build/fuzz" -maxdepth 1 -type f -executable -name 'fuzz_*' -printf '%f\n' | sort)
fi
mkdir -p "$root/fuzz/artifacts"
failed=0
for t in "${targets[@]}"; do
  corpus=$root/fuzz/corpus/$t
  mkdir -p "$corpus"
  # A target may ship seeds (fuzz/seeds/NAME/, kept in git); libFuzzer reads
  # them and writes what it finds to the first directory only.
  seeds=()
  if [ -d "$root/fuzz/seeds/$t" ]; then seeds=("$root/fuzz/seeds/$t"); fi
  echo "== $t, ${seconds}s"
  if ! "$build/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$root/fuzz/artifacts/$t-" "$corpus" "${seeds[@]}" 2>"$build/$t.log"; then
    echo "!! $t found a crash; see $build/$t.log and fuzz/artifacts/" >&2
    failed=1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$build/$t.log" || true
done
exit $failed
