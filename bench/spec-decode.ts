/**
 * Speculative decoding at batch 1: decode tokens/s with and without it, and the acceptance rate, on a repetitive
 * prompt (a code edit that copies most of its input) and on free generation.
 *
 *   node build/bench/spec-decode.js [MODEL_DIR] [--dummy] [--dtype float16] [--tokens 128] [--k 4] [--lookup 1:4]
 *     [--draft DRAFT_DIR] [--oracle 0,0.5,0.8,0.9,1] [--device webgpu|cpu]
 *
 * --draft uses a draft model (speculativeConfig { method: 'draft_model', model: DRAFT_DIR }) instead of the n-gram
 * proposer: it runs on the target's backend, k forwards of its own per step.
 *
 * With dummy weights the model's text is noise and n-gram drafts are almost never accepted, so acceptance says
 * nothing; --oracle A,B,... then replaces the n-gram proposer by one that proposes the greedy run without
 * speculation (computed first), each draft token right with probability A (else a wrong token; seeded), which
 * measures the verification step's speed-up at a chosen acceptance. Greedy outputs are checked equal to the run
 * without speculation in every mode.
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { Generator } from '../src/sampling/generator.js';
import type { ProposeRequest, Proposer } from '../src/spec-decode/proposer.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dummy: { type: 'boolean', default: false },
    dtype: { type: 'string', default: 'auto' },
    tokens: { type: 'string', default: '128' },
    k: { type: 'string', default: '4' },
    lookup: { type: 'string', default: '1:4' },
    oracle: { type: 'string', default: '' },
    draft: { type: 'string' },
    device: { type: 'string', default: 'auto' },
  },
});
const maxTokens = Number(values.tokens);
const k = Number(values.k);
const [lookMin, lookMax] = values.lookup.split(':').map(Number);
const oracle = values.oracle ? values.oracle.split(',').map(Number) : [];

const CODE = `function mergeSorted(a, b) {
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] <= b[j]) out.push(a[i++]);
    else out.push(b[j++]);
  }
  while (i < a.length) out.push(a[i++]);
  while (j < b.length) out.push(b[j++]);
  return out;
}`;
const WORKLOADS = [
  { name: 'repetitive (code edit)', prompt: `Rename the variable out to result in this code and print the whole code again.\n\n${CODE}\n\nThe code with out renamed to result:\n\n` },
  { name: 'free generation', prompt: 'Once upon a time' },
];
const params = new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true });

async function load(spec: boolean): Promise<LLM> {
  return LLM.create({
    model: positionals[0],
    loadFormat: values.dummy ? 'dummy' : 'auto',
    dtype: values.dtype as 'auto',
    device: values.device as 'auto',
    maxNumSeqs: 4,
    maxModelLen: 1024,
    speculativeConfig: !spec
      ? null
      : values.draft
        ? { method: 'draft_model', model: values.draft, numSpeculativeTokens: k }
        : { method: 'ngram', numSpeculativeTokens: k, promptLookupMin: lookMin, promptLookupMax: lookMax },
  });
}

/** One request: its token ids and decode tokens/s (first token to last, so the prompt's prefill is left out). */
async function run(llm: LLM, prompt: string): Promise<{ ids: number[]; tokPerS: number }> {
  let first = 0;
  let firstCount = 0;
  let ids: number[] = [];
  for await (const out of llm.engine.addRequest({ prompt, params })) {
    ids = out.outputs[0].tokenIds;
    if (first === 0) {
      first = performance.now();
      firstCount = ids.length;
    }
  }
  return { ids, tokPerS: (ids.length - firstCount) / ((performance.now() - first) / 1000) };
}

/** Runs `prompt` a warm-up time and then twice, keeping the faster. */
async function best(llm: LLM, prompt: string) {
  await run(llm, prompt);
  const a = await run(llm, prompt);
  const b = await run(llm, prompt);
  return a.tokPerS >= b.tokPerS ? a : b;
}

const base = await load(false);
const cfg = base.engine.config;
console.log(`# ${positionals[0] ?? 'embedded default'}: ${cfg.architecture}, hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers; ${values.dummy ? 'dummy' : 'real'} weights; ${maxTokens} tokens, greedy, batch 1`);
const method = values.draft ? `draft model ${values.draft}` : `ngram, prompt lookup ${lookMin}..${lookMax}`;
console.log(`# speculation: ${method}, k=${k}${oracle.length ? `; oracle acceptance ${oracle.join(', ')}` : ''}\n`);
const baseline = new Map<string, { ids: number[]; tokPerS: number }>();
for (const w of WORKLOADS) baseline.set(w.name, await best(base, w.prompt));
base.dispose();

const spec = await load(true);
const engine = spec.engine as unknown as { proposer: Proposer };
const configured = engine.proposer;
console.log('| workload | proposer | tok/s without | tok/s with | speed-up | acceptance rate | mean accepted per step | propose ms/step | ms/token without | same tokens |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const w of WORKLOADS) {
  const want = baseline.get(w.name)!;
  const modes: [string, Proposer][] = [[values.draft ? 'draft model' : 'ngram', configured]];
  for (const a of oracle) {
    const g = new Generator(1234);
    const V = cfg.vocabSize;
    // Drafts from the greedy run: right with probability a, else the next id (never the target's token).
    const propose = async (reqs: readonly ProposeRequest[]) =>
      new Map(
        reqs.map((r) => {
          const at = r.outputTokenIds.length;
          return [r.requestId, { tokenIds: want.ids.slice(at, at + r.maxTokens).map((t) => (g.uniform() < a ? t : (t + 1) % V)) }];
        }),
      );
    modes.push([`oracle ${a}`, { propose, release() {}, dispose() {} }]);
  }
  for (const [name, proposer] of modes) {
    // Host time in the proposer (a draft model's forwards), per call: the cost drafting adds to a step.
    let proposeMs = 0;
    let calls = 0;
    engine.proposer = {
      propose: async (reqs) => {
        const t0 = performance.now();
        const out = await proposer.propose(reqs);
        proposeMs += performance.now() - t0;
        calls++;
        return out;
      },
      release: (ids) => proposer.release(ids),
      dispose: () => proposer.dispose(),
    };
    const before = spec.engine.stats.specDecoding!;
    const got = await best(spec, w.prompt);
    const after = spec.engine.stats.specDecoding!;
    const drafts = after.numDraftTokens - before.numDraftTokens;
    const accepted = after.numAcceptedTokens - before.numAcceptedTokens;
    const steps = after.numDrafts - before.numDrafts;
    const same = got.ids.length === want.ids.length && got.ids.every((t, i) => t === want.ids[i]);
    console.log(
      `| ${w.name} | ${name} | ${want.tokPerS.toFixed(1)} | ${got.tokPerS.toFixed(1)} | ${(got.tokPerS / want.tokPerS).toFixed(2)}x | ` +
        `${drafts ? ((100 * accepted) / drafts).toFixed(1) : '-'}% | ${steps ? (accepted / steps).toFixed(2) : '-'} | ${(proposeMs / Math.max(1, calls)).toFixed(2)} | ` +
        `${(1000 / want.tokPerS).toFixed(2)} | ${same ? 'yes' : 'NO'} |`,
    );
  }
}
engine.proposer = configured; // disposed with the engine
spec.dispose();
