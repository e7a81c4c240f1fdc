/**
 * The tiled prompt attention kernel (shaders/paged_attention.tiled.wgsl) against the per-token kernels on a GPU,
 * which CI lacks (test/engine.test.ts runs the same comparison on lavapipe): the same long prompts (1 to 2 engine
 * chunks, decodes joining their steps), greedy, once with tuning.attentionTiledTokens as tuned and once with 0.
 *
 *   node build/bench/prompt-attention.js MODEL_DIR...
 *
 * Prints per model how many requests gave equal tokens, and the largest difference of a chosen token's logprob.
 */
import { basename } from 'node:path';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';

const promptOf = (n: number, seed: number) => [1, ...Array.from({ length: n - 1 }, (_, i) => 100 + ((seed * 37 + i * 11) % 1500))];
const lens = [300, 129, 140, 5, 250, 60, 480, 200];
const reqs = lens.map((n, i) => ({ promptTokenIds: promptOf(n, i) }));
const params = new SamplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true, logprobs: 1 });

async function run(model: string, tiled: boolean) {
  const llm = await LLM.create({ model, dtype: 'float16', maxNumSeqs: 16, maxNumBatchedTokens: 512, maxModelLen: 512, enablePrefixCaching: false });
  const runner = gpuRunnerOf(llm.engine);
  if (!tiled) runner.ctx.tuning = { ...runner.ctx.tuning, attentionTiledTokens: 0 };
  runner.clearGraphs();
  const out = (await llm.generate(reqs, params)).map((o) => o.outputs[0]);
  await llm.dispose();
  return out;
}

let ok = true;
for (const model of process.argv.slice(2)) {
  const a = await run(model, true);
  const b = await run(model, false);
  let same = 0;
  let maxDiff = 0;
  a.forEach((o, i) => {
    if (o.tokenIds.join() === b[i].tokenIds.join()) same++;
    o.tokenIds.forEach((id, k) => {
      const x = o.logprobs?.[k]?.get(id)?.logprob;
      const y = b[i].logprobs?.[k]?.get(id)?.logprob;
      if (x !== undefined && y !== undefined) maxDiff = Math.max(maxDiff, Math.abs(x - y));
    });
  });
  ok &&= same === a.length;
  console.log(`${same === a.length ? 'ok  ' : 'FAIL'} ${basename(model)}: tiled vs per-token prompt attention, ${same}/${a.length} requests with equal greedy tokens; chosen-token logprobs differ by ${maxDiff.toExponential(1)} at most`);
}
process.exit(ok ? 0 : 1);
