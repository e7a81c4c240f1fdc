#!/usr/bin/env bash
# Two builds side by side in one call of the lent GPU (device time is scarce): goldens on the new build, the
# runner's batch-1 steps (dispatches, kernel profile, 512-token prefill), batch-1 engine decode in f16 and q4_0, and
# the quantized tensor-core kernels (default tiles) of both.
#   here:        npm run build in each tree, then bash bench/gpu-check.sh prepare, then pack them (carry limit 64 MiB):
#                mkdir -p /tmp/carry/.b/{base,new} && cp -r OLD/build/bench /tmp/carry/.b/base/bench &&
#                cp -r NEW/build/bench /tmp/carry/.b/new/bench && cp -r .benchcfg .goldens /tmp/carry/ &&
#                (cd /tmp/carry && tar cJf "$OLDPWD/.cache/carry.tar.xz" .b .benchcfg .goldens/goldens.json
#                 .goldens/tinystories-656K .goldens/stories260K)
#   device run:  carry [".gpu", ".cache/carry.tar.xz"], command: bash bench/gpu-ab.sh; the log comes back as $OUT/log.txt
set -u
cd "$(dirname "$0")/.."
tar xJf .cache/carry.tar.xz
source .gpu/setup.sh
out=${OUT:-/tmp}
quiet='^(Warning|Compilation log|warning|[0-9]+ warning)|deprecated builtin|^ *\^|^:[0-9]|subgroupMatrix(Load|Store)'
cfg=.benchcfg/llama-3.2-1b
sec() { echo "## $*" | tee -a "$out/log.txt"; }
run() { timeout "$1" "${@:2}" 2>&1 | grep -vE "$quiet" | tee -a "$out/log.txt"; }
sec goldens new
run 60 node .b/new/bench/goldens.js .goldens/goldens.json .goldens/tinystories-656K .goldens/stories260K --copies 4 | grep -E '^(ok|FAIL|  GPU errors)|models? (match|differ)'
for q in "" q4_0; do for b in base new; do
  sec runner $b ${q:-f16}
  run 45 node .b/$b/bench/generate.js $cfg --dtype float16 --unsafe ${q:+--quantization $q} --batch 1 --prefill 512 --steps 64 --profile | grep -E '^\| (prefill|decode)|^# (decode|profile)|^#   '
done; done
for q in "" q4_0; do for b in base new; do
  sec engine 1 stream $b ${q:-f16}
  run 45 node .b/$b/bench/engine.js $cfg --dummy --dtype float16 ${q:+--quantization $q} --streams 1 --repeat 3 --timing | grep -E '^\| 1 |^# 1 streams'
done; done
for b in base new; do
  sec quant-ops default tiles $b
  run 60 node .b/$b/bench/quant-ops.js --unsafe --formats q4_0,q4_k --tokens 64,512 --no-tiled --mma-tiles default | grep -E '^\| q'
done
