#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every test (unit,
# integration against real Redis and Postfix, end-to-end, conformance).
#   BUILD_DIR   build directory (default: build)
#   JOBS        parallel build jobs (default: number of cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
jobs=${JOBS:-$(nproc)}

"$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILPOLICY_WERROR=ON
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
