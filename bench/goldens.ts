/**
 * The f16 GPU path against Hugging Face's goldens, for machines without the test suite (the lent GPU): the kernels
 * that CPU WebGPU never runs (tensor cores, split K, GPU tuning) must give the same answers as the f32 path does in
 * test/models.test.ts. Each golden prompt is sent `copies` times in one batch, so that prefill and decode steps
 * have enough tokens for the subgroup-matrix kernels.
 *
 *   node build/bench/goldens.js GOLDENS_JSON MODEL_DIR... [--copies 4] [--sync]
 *
 * The engine runs with async scheduling (its default; --sync: without), and the greedy ids are checked once more
 * from a plain greedy run (the logprobs run samples on the CPU, which async scheduling does not run ahead of), up
 * to its first EOS (the logprobs run bans EOS through minTokens, which also keeps rows on the CPU).
 *
 * Prints per model: top-20 logprobs of the first generated token (max error against the golden, where ranks
 * agree), and greedy ids matching the golden up to its first margin below 0.25 (f16 rounding), for every copy.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';

interface GoldenPrompt {
  text: string;
  input_ids: number[];
  last_logits_top20: { ids: number[] };
  last_logprobs_top20: number[];
  greedy_ids: number[];
  greedy_margins: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { copies: { type: 'string', default: '4' }, sync: { type: 'boolean', default: false } },
});
const [goldensPath, ...dirs] = positionals;
const goldens = JSON.parse(readFileSync(goldensPath, 'utf8')) as Record<string, { prompts: GoldenPrompt[] }>;
const copies = Number(values.copies);
const MARGIN = 0.25; // f16 weights and activations: logits move by ~1e-2 a step, and errors compound
let failures = 0;
for (const dir of dirs) {
  const name = basename(dir);
  const g = goldens[name];
  if (!g) throw new Error(`no goldens for ${name}`);
  const llm = await LLM.create({ model: dir, dtype: 'float16', maxNumSeqs: 64, kvCacheMemoryBytes: 64 << 20, asyncScheduling: !values.sync });
  const ctx = gpuRunnerOf(llm.engine).ctx;
  const n = g.prompts[0].greedy_ids.length;
  const prompts = g.prompts.flatMap((p) => Array.from({ length: copies }, () => ({ promptTokenIds: p.input_ids })));
  const outs = await llm.generate(prompts, new SamplingParams({ temperature: 0, maxTokens: n, minTokens: n, logprobs: 20 }));
  const plain = !values.sync ? await llm.generate(prompts, new SamplingParams({ temperature: 0, maxTokens: n, ignoreEos: true })) : [];
  let worst = 0;
  let compared = 0;
  let matched = 0;
  g.prompts.forEach((p, i) => {
    for (let c = 0; c < copies; c++) {
      const out = outs[i * copies + c].outputs[0];
      const greedy = plain[i * copies + c]?.outputs[0].tokenIds ?? out.tokenIds;
      const eos = greedy.findIndex((id) => llm.engine.eosTokenIds.includes(id));
      const lp = out.logprobs![0];
      p.last_logits_top20.ids.forEach((id, r) => {
        const mine = lp.get(id);
        if (mine) worst = Math.max(worst, Math.abs(mine.logprob - p.last_logprobs_top20[r]));
        else if (r < 5) worst = Infinity;
      });
      const k = p.greedy_margins.findIndex((m) => m < MARGIN);
      const steps = k < 0 ? n : k + 1;
      compared++;
      if (out.tokenIds.slice(0, steps).every((id, j) => id === p.greedy_ids[j] && (greedy[j] === id || (eos >= 0 && j >= eos)))) matched++;
    }
  });
  const ok = worst < 3e-2 && matched === compared;
  if (!ok) failures++;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${name}: ${compared} sequences (${g.prompts.length} prompts x ${copies}); first-token top-20 max error ${worst.toExponential(1)}; ` +
      `greedy ids equal up to the golden's first margin < ${MARGIN}: ${matched}/${compared}${values.sync ? '' : ' (also from async scheduling)'}; subgroup matrices ${ctx.subgroupMatrix}`,
  );
  const errors = ctx.takeErrors();
  if (errors.length) console.log(`  GPU errors: ${errors.slice(0, 2).join(' | ')}`);
  await llm.dispose();
}
console.log(failures === 0 ? 'all models match' : `${failures} model(s) differ`);
process.exit(failures === 0 ? 0 : 1);
