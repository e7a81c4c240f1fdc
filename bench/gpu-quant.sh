#!/usr/bin/env bash
# Quantized decode/prefill and speculative decoding on the lent GPU, in one call (device time is scarce):
#
#   here:        npm run build && bash bench/gpu-check.sh prepare
#   device run:  carry [".gpu", "build", ".benchcfg", "node_modules/@mlc-ai/web-xgrammar"], command:
#                source .gpu/setup.sh && bash bench/gpu-quant.sh
#
# Prints: int8-activation vs float GEMV per format (bench/quant-ops.js), the runner's decode at 1 and 64 streams
# and one 512-token prefill for f16 and each quantized format with kernel profiles, the whole engine at 1 and 64
# streams per format and at 1-8 streams per int8 threshold (tuning.quantGemvInt8MinTokens), speculative decoding at
# oracle acceptance rates, and structured outputs (32 free streams beside 32 constrained). Each section is also
# written to $OUT when set (about 4 minutes on an H100).
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
quiet='^(Warning|Compilation log|warning|[0-9]+ warning)|deprecated builtin|^ *\^|^:[0-9]|subgroupMatrix(Load|Store)'
cfg=.benchcfg/llama-3.2-1b
echo "# int8 vs float GEMV"
node build/bench/quant-ops.js --tokens 1,4,8 --int8 off,on --unsafe 2>&1 | grep -vE "$quiet" | tee "$out/quant-ops.txt"
for q in "" q4_0 q4_k_m q8_0; do
  echo "# runner ${q:-f16}"
  node build/bench/generate.js $cfg --dtype float16 --unsafe ${q:+--quantization $q} --batch 1,64 --prefill 512 --profile \
    2>&1 | grep -E '^\||^#' | tee "$out/generate-${q:-f16}.txt"
done
echo "# speculative decoding, oracle acceptance"
node build/bench/spec-decode.js $cfg --dummy --dtype float16 --oracle 0,0.5,0.8,0.9,1 2>&1 | grep -vE "$quiet" | tee "$out/spec.txt"
keep='^\||^# (tuning|adapter)'
for q in "" q4_0 q4_k_m q8_0; do
  echo "# engine ${q:-f16}"
  node build/bench/engine.js $cfg --dummy --dtype float16 ${q:+--quantization $q} --streams 1,64 --repeat 3 2>&1 | grep -E "$keep" | tee "$out/engine-${q:-f16}.txt"
done
for q in q4_0 q4_k_m; do for t in 0 1 2 4; do
  echo "# engine $q, int8 GEMV from $t tokens (0: never)"
  node build/bench/engine.js $cfg --dummy --dtype float16 --quantization $q --streams 1,2,4,8 --repeat 3 --tune quantGemvInt8MinTokens=$t 2>&1 | grep -E "$keep" | tee "$out/engine-$q-int8-$t.txt"
done; done
echo "# structured outputs: 32 free streams beside 32 constrained (JSON schema)"
node build/bench/structured.js $cfg --dummy --dtype float16 --free 32 --constrained 32 --tokens 64 --repeat 2 2>&1 | grep -E '^(model|round)' | tee "$out/structured.txt"
