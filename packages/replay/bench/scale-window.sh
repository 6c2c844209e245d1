#!/bin/sh
# Self cost a steady line of the scale row's machine, by function, with a cache simulation (not a
# test): callgrind runs bench/scale-window.ts with its instrumentation off through the set-up, the
# lead and `skip` lines (at 4,096 devices 23 G instructions, which cachegrind simulated for hours on
# a loaded host), on for `warm` lines (the simulated caches filled, the counts dropped) and `window`
# lines, whose counts it dumps to <out>/callgrind.out.2. The caches are an L1d and an L2 of the host
# the bench figures were taken on (48 KiB 12-way, 2 MiB 16-way). JIT code is named from V8's
# perf map, kept as <out>/perf.map (bench/scale-window-lines.py reads both).
# `bench/scale-window.sh <dist/index.js> <64|4096> <out> [skip=40000] [warm=3000] [window=20000]` from
# packages/replay: <dist/index.js> is a build of @vpci/replay (this worktree's, or one copied aside
# in a checkout), bundled with the packages it imports into one module, as line-instructions.sh
# bundles its tool (calls between modules direct).
set -e
build=$(realpath "$1") devices=$2 out=$3 skip=${4:-40000} warm=${5:-3000} window=${6:-20000}
mkdir -p "$out"
script=$(mktemp -d)
bundle() {
  npx esbuild "$1" --bundle --platform=node --format=esm --log-level=warning \
    "--banner:js=import{createRequire}from'module';const require=createRequire(import.meta.url);" \
    --outfile="$2"
}
echo "export { TraceReplay } from '$build';" >"$script/build.mjs"
bundle "$script/build.mjs" "$script/replay.mjs"
bundle bench/scale-window.ts "$script/scale-window.mjs"
valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes --D1=49152,12,64 --LL=2097152,16,64 \
  --dump-instr=yes --dump-line=no --callgrind-out-file="$out/callgrind.out" \
  node --predictable --single-threaded --perf-basic-prof --logfile="$out/v8.log" --no-logfile-per-isolate \
  "$script/scale-window.mjs" \
  "$script/replay.mjs" "$devices" "$skip" "$warm" "$window" "$out" >"$out/log" 2>&1 &
run=$!
for n in 0 1 2; do
  while ! ls "$out"/stop.*."$n" >/dev/null 2>&1; do
    kill -0 $run 2>/dev/null || { cat "$out/log"; exit 1; }
    sleep 1
  done
  pid=$(basename "$out"/stop.*."$n" | cut -d. -f2)
  # Instrumentation on after the skipped lines; a dump (which zeroes the counts) after each other part.
  if [ "$n" = 0 ]; then callgrind_control -i on "$pid" >/dev/null 2>&1; else callgrind_control -d "$pid" >/dev/null 2>&1; fi
  [ "$n" = 2 ] && cp "/tmp/perf-$pid.map" "$out/perf.map"
  touch "$out/go.$pid.$n"
done
wait $run
rm -r "$script"
echo "$devices devices: $window lines counted in $out/callgrind.out.2"
