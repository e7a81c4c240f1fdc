#!/usr/bin/env bash
# The batch-1 quantized GEMV's open choices on the lent GPU, in one call (about 5 minutes; device time is scarce):
# tuning.quantGemvStage (inputs staged in workgroup memory) and the one-token shapes (quantGemvOne /
# quantGemvOneLong: threads:lanes:rows), per kernel and over whole engine steps, and f16 at one stream (its down
# projection's 64-lane sums now go through lib/lane_sum.split.wgsl). Turn staging on / change the shapes in
# src/gpu/tuning.ts only where the engine's tok/s moves, not the kernel alone.
#
#   here:        npm run build && bash bench/gpu-check.sh prepare
#   device run:  carry [".gpu", "build", ".benchcfg"], command: source .gpu/setup.sh && bash bench/gpu-gemv.sh
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
quiet='^(Warning|Compilation log|warning|[0-9]+ warning)|deprecated builtin|^ *\^|^:[0-9]|subgroupMatrix(Load|Store)'
keep='^\||^# (tuning|adapter)'
cfg=.benchcfg/llama-3.2-1b
echo "# quantized GEMV per kernel at 1 token: shapes, staged or direct"
node build/bench/quant-ops.js --formats q4_0,q4_k --tokens 1 --int8 off \
  --gemv 64:32:4:direct,64:32:4:staged,64:64:1:direct,64:64:1:staged,128:64:1:staged,128:32:2:staged 2>&1 | grep -vE "$quiet" | tee "$out/gemv-ops.txt"
for t in quantGemvStage=false quantGemvStage=true quantGemvOne=64:64:1,quantGemvOneLong=64:64:1,quantGemvStage=true \
  quantGemvOne=128:64:1,quantGemvOneLong=128:64:1,quantGemvStage=true; do
  echo "# engine q4_0, 1 stream, --tune $t"
  node build/bench/engine.js $cfg --dummy --dtype float16 --quantization q4_0 --streams 1 --repeat 3 --tune "$t" 2>&1 | grep -E "$keep" | tee -a "$out/gemv-engine.txt"
done
echo "# engine f16, 1 stream"
node build/bench/engine.js $cfg --dummy --dtype float16 --streams 1 --repeat 3 2>&1 | grep -E "$keep" | tee -a "$out/gemv-engine.txt"
echo "# runner q4_0, 1 and 64 streams, kernel profile"
node build/bench/generate.js $cfg --dtype float16 --quantization q4_0 --batch 1,64 --profile 2>&1 | grep -E '^\||^#' | tee "$out/gemv-generate.txt"
