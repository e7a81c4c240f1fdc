#!/usr/bin/env bash
# Quantized decode/prefill and speculative decoding on the lent GPU, in one call (device time is scarce):
#
#   here:        npm run build && bash bench/gpu-check.sh prepare
#   device run:  carry [".gpu", "build", ".benchcfg"], command: source .gpu/setup.sh && bash bench/gpu-quant.sh
#
# Prints: int8-activation vs float GEMV per format (bench/quant-ops.js), the runner's decode at 1 and 64 streams
# and one 512-token prefill for f16 and each quantized format with kernel profiles, then speculative decoding at
# oracle acceptance rates. Each section is also written to $OUT when set.
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
