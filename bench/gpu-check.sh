#!/usr/bin/env bash
# The numbers the engine issue tracks, in one call of the lent GPU (device time is scarce):
#
#   here:        npm run build && bash bench/gpu-check.sh prepare
#   device run:  carry [".gpu", "build/bench", ".benchcfg", ".goldens"], command
#                source .gpu/setup.sh && bash bench/gpu-check.sh
#
# prepare copies the bench shapes (Llama-3.2-1B config with llama3-rand's tokenizer) into .benchcfg and a few
# golden fixtures into .goldens (both git-ignored; the carry limit is 64 MiB with .gpu). The run prints: the f16
# GPU path against the goldens (tensor cores included; with and without async scheduling), the tiled prompt
# attention against the per-token kernels (bench/prompt-attention.js), the engine at 1-64
# streams (median of 3 rounds; then with --sync, one step at a time), the runner's prefill and decode with a
# per-kernel profile of each step, and one engine-like prefill chunk. Also in
# the kit: bench/mma-tables.sh (bench/generate.js --mma-tiles JSON / --tune k=v over several tunings in one call:
# compare them by whole steps' kernel totals), bench/ops.js --repeat for single kernels (which at 16-64 tokens
# disagreed with whole steps: trust the steps).
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = prepare ]; then
  shared=../shared
  rm -rf .goldens && mkdir -p .benchcfg/llama-3.2-1b .goldens
  cp "$shared/bench-models/llama-3.2-1b/config.json" .benchcfg/llama-3.2-1b/
  cp "$shared/models/llama3-rand/"tokenizer*.json .benchcfg/llama-3.2-1b/
  cp "$shared/models/goldens.json" .goldens/
  for m in tinystories-656K stories260K phi3-rand; do cp -r "$shared/models/$m" .goldens/; done
  du -sh .gpu build/bench .benchcfg .goldens 2>/dev/null
  exit 0
fi
quiet='^(Warning|Compilation log|warning|[0-9]+ warning)|deprecated builtin|^ *\^|^:[0-9]|subgroupMatrix(Load|Store)'
for a in "" --sync; do
  node build/bench/goldens.js .goldens/goldens.json .goldens/tinystories-656K .goldens/stories260K .goldens/phi3-rand --copies 8 $a 2>&1 | grep -E '^(ok|FAIL|  GPU errors)|models? (match|differ)'
done
node build/bench/prompt-attention.js .goldens/tinystories-656K .goldens/phi3-rand 2>&1 | grep -E '^(ok|FAIL)'
node build/bench/engine.js .benchcfg/llama-3.2-1b --dummy --dtype float16 --repeat 3 --timing 2>&1 | grep -vE "$quiet"
echo "# the same without async scheduling (--sync)"
node build/bench/engine.js .benchcfg/llama-3.2-1b --dummy --dtype float16 --repeat 3 --timing --sync 2>&1 | grep -vE "$quiet"
node build/bench/generate.js .benchcfg/llama-3.2-1b --batch 1,8,16,32,64 --prefill 128,512,2048 --profile 2>&1 | grep -E '^\||^#'
# One engine chunk: 16 prompts of 128 tokens in one step, with its kernel profile.
node build/bench/generate.js .benchcfg/llama-3.2-1b --batch 1 --prefill 2048 --prefill-seqs 16 --profile 2>&1 | grep -E '^\| prefill|^# profile, 2048|^#  '
