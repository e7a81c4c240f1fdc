#!/usr/bin/env bash
# The batch-1 quantized GEMV's open choices on the lent GPU, in one call (about 4 minutes; device time is scarce):
# the staged GEMV with int8 inputs at one token (tuning.quantGemvStageInt8: the workgroup quantizes its inputs
# itself, four threads a chunk) against float inputs, over whole engine steps at 1 stream
# (with --timing: the CPU parts and the wait for the GPU) for q4_0, q4_k and q8_0, then the runner's decode
# breakdown and kernel profile of each (the in-step kernels: fused RMSNorm and rope included). Change
# src/gpu/tuning.ts only where the engine's tok/s moves, not the kernel alone.
#
#   here:        npm run build && bash bench/gpu-check.sh prepare
#   device run:  carry [".gpu", "build", ".benchcfg"], command: source .gpu/setup.sh && bash bench/gpu-gemv.sh
#                (ROUNDS=1 for one round of the engine runs; TUNES and FORMATS, space-separated, override the lists)
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
keep='^\||^# (tuning|adapter|[0-9]+ streams)'
cfg=.benchcfg/llama-3.2-1b
tunes=${TUNES:-"quantGemvStageInt8=0 quantGemvStageInt8=1"}
for round in ${ROUNDS:-1 2}; do
  for q in ${FORMATS:-q4_0 q4_k q8_0}; do
    for t in $tunes; do
      [ $q = q8_0 ] && [ $round = 2 ] && continue
      echo "# round $round, engine $q, --tune $t"
      node build/bench/engine.js $cfg --dummy --dtype float16 --quantization $q --streams 1 --repeat 3 --timing \
        --tune "$t" 2>&1 | grep -E "$keep" | grep -v '^|---\|^| streams' | tee -a "$out/gemv-engine.txt"
    done
  done
done
echo "# engine f16, 1 stream"
node build/bench/engine.js $cfg --dummy --dtype float16 --streams 1 --repeat 3 --timing 2>&1 | grep -E "$keep" | grep -v '^|---\|^| streams' | tee -a "$out/gemv-engine.txt"
for t in $tunes; do
  echo "# runner q4_0, 1 stream, --tune $t: decode breakdown and kernel profile"
  node build/bench/generate.js $cfg --dtype float16 --quantization q4_0 --batch 1 --prefill 16 --profile --tune $t 2>&1 | grep -E '^# (decode|profile, 1 |  )' | tee -a "$out/gemv-generate.txt"
done
