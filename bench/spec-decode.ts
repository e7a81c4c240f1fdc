/**
 * Speculative decoding at batch 1: decode tokens/s with and without it, and the acceptance rate, on a repetitive
 * prompt (a code edit that copies most of its input) and on free generation.
 *
 *   node build/bench/spec-decode.js [MODEL_DIR] [--dummy] [--dtype float16] [--tokens 128] [--k 4] [--lookup 1:4]
 *     [--oracle 0,0.5,0.8,0.9,1] [--device webgpu|cpu]
 *
 * With dummy weights the model's text is noise and n-gram drafts are almost never accepted, so acceptance says
 * nothing; --oracle A,B,... then puts in place of the n-gram proposer (EngineOptions.proposer) one that proposes
 * the greedy run without speculation (computed first), each draft token right with probability A (else a wrong token; seeded), which
 * measures the verification step's speed-up at a chosen acceptance. Greedy outputs are checked equal to the run
 * without speculation in every mode.
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { Generator } from '../src/sampling/generator.js';
import { parseSpeculativeConfig } from '../src/spec-decode/config.js';
import { NgramProposer } from '../src/spec-decode/ngram-proposer.js';
import type { Proposer } from '../src/spec-decode/proposer.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dummy: { type: 'boolean', default: false },
    dtype: { type: 'string', default: 'auto' },
    tokens: { type: 'string', default: '128' },
    k: { type: 'string', default: '4' },
    lookup: { type: 'string', default: '1:4' },
    oracle: { type: 'string', default: '' },
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
const specConfig = { method: 'ngram', numSpeculativeTokens: k, promptLookupMin: lookMin, promptLookupMax: lookMax } as const;
const ngram = new NgramProposer(parseSpeculativeConfig(specConfig)!);
/** The proposer of the mode being measured: the engine's proposer hands its requests here. */
let current: Proposer = ngram;

async function load(spec: boolean): Promise<LLM> {
  return LLM.create({
    model: positionals[0],
    loadFormat: values.dummy ? 'dummy' : 'auto',
    dtype: values.dtype as 'auto',
    device: values.device as 'auto',
    maxNumSeqs: 4,
    maxModelLen: 1024,
    speculativeConfig: spec ? specConfig : null,
    proposer: spec ? { propose: (tokens, max) => current.propose(tokens, max) } : undefined,
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
console.log(`# speculation: ngram k=${k}, prompt lookup ${lookMin}..${lookMax}${oracle.length ? `; oracle acceptance ${oracle.join(', ')}` : ''}\n`);
const baseline = new Map<string, { ids: number[]; tokPerS: number }>();
for (const w of WORKLOADS) baseline.set(w.name, await best(base, w.prompt));
base.dispose();

const spec = await load(true);
console.log('| workload | proposer | tok/s without | tok/s with | speed-up | acceptance rate | mean accepted per step | same tokens |');
console.log('|---|---|---|---|---|---|---|---|');
for (const w of WORKLOADS) {
  const want = baseline.get(w.name)!;
  const promptLen = spec.engine.tokenizer.encode(w.prompt).length;
  const modes: [string, Proposer][] = [['ngram', ngram]];
  for (const a of oracle) {
    const g = new Generator(1234);
    const V = cfg.vocabSize;
    // Drafts from the greedy run: right with probability a, else the next id (never the target's token).
    const propose = (tokens: ArrayLike<number>) => want.ids.slice(tokens.length - promptLen, tokens.length - promptLen + k).map((t) => (g.uniform() < a ? t : (t + 1) % V));
    modes.push([`oracle ${a}`, { propose }]);
  }
  for (const [name, proposer] of modes) {
    current = proposer;
    const before = spec.engine.stats.specDecoding!;
    const got = await best(spec, w.prompt);
    const after = spec.engine.stats.specDecoding!;
    const drafts = after.numDraftTokens - before.numDraftTokens;
    const accepted = after.numAcceptedTokens - before.numAcceptedTokens;
    const steps = after.numDrafts - before.numDrafts;
    const same = got.ids.length === want.ids.length && got.ids.every((t, i) => t === want.ids[i]);
    console.log(
      `| ${w.name} | ${name} | ${want.tokPerS.toFixed(1)} | ${got.tokPerS.toFixed(1)} | ${(got.tokPerS / want.tokPerS).toFixed(2)}x | ` +
        `${drafts ? ((100 * accepted) / drafts).toFixed(1) : '-'}% | ${steps ? (accepted / steps).toFixed(2) : '-'} | ${same ? 'yes' : 'NO'} |`,
    );
  }
}
spec.dispose();
