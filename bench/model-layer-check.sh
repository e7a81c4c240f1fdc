#!/usr/bin/env bash
# The model-layer issue's GPU numbers in one call of the lent GPU:
#
#   here:        npm run build && bash bench/model-layer-check.sh prepare [OLD_BENCH_DIR]
#   device run:  carry [".gpu", "build/bench", ".bench-old", ".goldens", ".benchcfg"], command
#                source .gpu/setup.sh && bash bench/model-layer-check.sh
#
# prepare copies the bench shapes (Llama-3.2-1B, and 8 layers of Qwen3-30B-A3B for the MoE) into .benchcfg and into
# .goldens the shared goldens with stories260K (the embedded tinystories-656K travels in models/) and one copy of
# each tokenizer test/fixtures' models borrow (linked into them on the device: the carry limit is 64 MiB). OLD_BENCH_DIR (e.g. the build/bench of the commit before the
# restructuring, copied to .bench-old) runs the same runner and engine benches for a before/after table.
# The run prints: runner decode (batch 1, 64) and prefill (512, 2048) and the engine at 1 and 64 streams for the old
# build, then this one; the f16 GPU path against the goldens of the shared models and of every fixture family; a
# Qwen3-30B-A3B-shaped MoE layer stack's decode and prefill; bench/moe.js's single MoE layer.
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" = prepare ]; then
  shared=../shared
  rm -rf .goldens .benchcfg && mkdir -p .benchcfg/llama-3.2-1b .benchcfg/qwen3-30b-a3b-8l .goldens/tok
  cp "$shared/bench-models/llama-3.2-1b/config.json" .benchcfg/llama-3.2-1b/
  cp "$shared/models/llama3-rand/"tokenizer*.json .benchcfg/llama-3.2-1b/
  # Qwen3-30B-A3B's config.json with 8 of its 48 layers (the rest of the shape as published).
  cat > .benchcfg/qwen3-30b-a3b-8l/config.json <<'JSON'
{"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,
 "moe_intermediate_size": 768, "num_hidden_layers": 8, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
 "vocab_size": 151936, "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": true, "decoder_sparse_step": 1,
 "mlp_only_layers": [], "rope_theta": 1000000.0, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06,
 "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645}
JSON
  cp "$shared/models/goldens.json" .goldens/
  cp -r "$shared/models/stories260K" .goldens/
  for t in tiny-random-llama2 opt-rand gpt2-rand; do mkdir -p .goldens/tok/$t && cp "$shared/models/$t/"tokenizer*.json .goldens/tok/$t/; done
  [ -n "${2:-}" ] && rm -rf .bench-old && cp -r "$2" .bench-old
  du -sh .gpu build/bench .bench-old .benchcfg .goldens 2>/dev/null
  exit 0
fi
quiet='^(Warning|Compilation log|warning|[0-9]+ warning)|deprecated builtin|^ *\^|^:[0-9]|subgroupMatrix(Load|Store)'
# Fixtures borrow their tokenizers (test/helpers/fixtures.ts does the same).
for m in test/fixtures/models/*; do
  t=$(node -e "console.log(require('./test/fixtures/goldens.json')[process.argv[1]].tokenizer_from)" "$(basename "$m")")
  for f in .goldens/tok/$t/*; do ln -sf "$(pwd)/$f" "$m/"; done
done
for b in .bench-old build/bench; do
  [ -d "$b" ] || continue
  echo "# ===== $b"
  node $b/generate.js .benchcfg/llama-3.2-1b --batch 1,64 --prefill 512,2048 2>&1 | grep -E '^\||^# (adapter|copy)'
  node $b/engine.js .benchcfg/llama-3.2-1b --dummy --dtype float16 --streams 1,64 --repeat 3 2>&1 | grep -vE "$quiet"
done
echo "# ===== goldens, f16 GPU path"
node build/bench/goldens.js .goldens/goldens.json models/tinystories-656K .goldens/stories260K --copies 8 2>&1 | grep -E '^(ok|FAIL)|models? (match|differ)'
node build/bench/goldens.js test/fixtures/goldens.json test/fixtures/models/* --copies 8 2>&1 | grep -E '^(ok|FAIL)|models? (match|differ)|Error'
echo "# ===== Qwen3-30B-A3B shape, 8 layers (dummy f16)"
node build/bench/generate.js .benchcfg/qwen3-30b-a3b-8l --batch 1,8,64 --prefill 512 2>&1 | grep -E '^\||^#'
echo "# ===== one MoE layer (bench/moe.js)"
node build/bench/moe.js --tokens 1,8,64,512 2>&1 | grep -vE "$quiet" | head -40
