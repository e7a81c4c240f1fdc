#!/usr/bin/env bash
# Quantized weights on the lent GPU, Llama-3.2-1B shapes with dummy weights (issue 16's benchmark), in one call:
#
#   here:        npm run build && bash bench/gpu-check.sh prepare
#   device run:  carry [".gpu", "build/bench", ".benchcfg"], command
#                source .gpu/setup.sh && bash bench/quant-check.sh [FORMATS]
#
# For each of f16 and the formats (default: q8_0 q4_0 q4_k q4_k_m q6_k): the engine's decode tokens/s at 1 and 64
# streams (128 + 128 tokens, median of 3 rounds) and the time to first token of one 512-token prompt (prefill),
# beside llama.cpp's numbers on the same card (../shared/bench-models/README.md: Q4_0 tg128 970, Q4_K_M 837,
# Q8_0 795; pp512 Q4_0 41,200, Q4_K_M 33,700, Q8_0 42,500; Q4_0 64 sequences 13,200).
set -u
cd "$(dirname "$0")/.."
quiet='^(Warning|Compilation log|warning|[0-9]+ warning)|deprecated builtin|^ *\^|^:[0-9]|subgroupMatrix(Load|Store)'
for q in f16 ${1:-q8_0 q4_0 q4_k q4_k_m q6_k}; do
  arg=$([ "$q" = f16 ] && echo "" || echo "--quantization $q")
  echo "## $q: decode"
  node build/bench/engine.js .benchcfg/llama-3.2-1b --dummy --dtype float16 --streams 1,64 --repeat 3 $arg 2>&1 | grep -vE "$quiet"
  echo "## $q: prefill 512 (time to first token of one prompt)"
  node build/bench/engine.js .benchcfg/llama-3.2-1b --dummy --dtype float16 --streams 1 --prompt 512 --tokens 2 --repeat 3 $arg 2>&1 | grep -E '^\| 1 \||^# load|TTFT'
done
