#!/bin/sh
# Instructions a line of one contender of line-instructions.ts (not a test): cachegrind counts the
# instructions of two runs, 100,000 and 300,000 lines fed (side by side), and the difference is divided
# by 200,000. The tool is bundled by esbuild first, as tsup bundles the package (one module, calls
# between functions direct: under tsx each call of another module's function went through a getter,
# and a loader thread ran beside it).
# `bench/line-instructions.sh <parse|unchecked|scoped|direct> [devices: 64 or 4096]` from
# packages/replay (4096: the scale row's larger machine).
set -e
contender=${1:-parse}
devices=${2:-64}
out=$(mktemp -d)
npx esbuild bench/line-instructions.ts --bundle --platform=node --format=esm --log-level=warning \
  --outfile="$out/line-instructions.mjs"
count() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    node --predictable --single-threaded "$out/line-instructions.mjs" "$contender" "$1" 300000 "$devices" >"$out/$1" 2>&1
}
count 100000 &
count 300000
wait
low=$(sed -n 's/.*I *refs: *//p' "$out/100000" | tr -d ,)
high=$(sed -n 's/.*I *refs: *//p' "$out/300000" | tr -d ,)
rm -r "$out"
echo "$contender ($devices devices): $(( (high - low) / 200000 )) instructions a line ($low, $high)"
