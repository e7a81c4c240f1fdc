/**
 * The fixture checkpoints of test/fixtures (tiny random models of the architectures the engine is growing into, made
 * by test/fixtures/make_fixtures.py) against Hugging Face transformers' goldens, compared as models.test.ts compares
 * the shared models: prompt token ids, top-20 logprobs of the first generated token, argmax at every prompt position,
 * greedy continuations while the golden margins are usable. Fixtures not in SUPPORTED must fail to load with an
 * error naming what is missing; move a fixture into SUPPORTED when its family lands.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig, SamplingParams, type LLM, type RequestOutput } from '../bindings/node/index.js';
import { assembleFixture, loadFixtureGoldens, readFixtureConfig, type AssembledModel } from './helpers/fixtures.js';
import { loadLLM } from './helpers/llm.js';
import type { GoldenPrompt } from './helpers/paths.js';

/** Fixtures that load and match their goldens today. */
const SUPPORTED = new Set([
  'gemma2-rand', 'gemma3-rand', 'phi4mini-rand', 'smollm3-rand', 'olmo2-rand', 'granite-rand',
  'mixtral-rand', 'qwen2moe-rand', 'qwen3moe-rand', 'opt350m-rand', 'llama-hd6-rand', 'gpt2-hd5-rand',
]);

/**
 * What the load error of an unsupported fixture must name: its architecture class, or, where the class is known
 * but a feature of the checkpoint is not, that feature's config key.
 */
const MISSING_FEATURE: Record<string, string> = {};

const goldens = loadFixtureGoldens();
const fixtures = Object.keys(goldens);
/** Measured f32-path error on logits is ~1e-5; greedy steps with a smaller golden margin are not compared. */
const MARGIN = 1e-3;

/** Greedy ids must match up to the first step whose golden margin is below MARGIN (that step is a tie-break). */
function comparableSteps(g: GoldenPrompt): number {
  const i = g.greedy_margins.findIndex((m) => m < MARGIN);
  return i < 0 ? g.greedy_ids.length : i + 1;
}

it('SUPPORTED names fixtures that exist', () => {
  for (const name of SUPPORTED) expect(fixtures).toContain(name);
});

describe.each(fixtures.filter((f) => SUPPORTED.has(f)))('%s', (name) => {
  const g = goldens[name];
  let model: AssembledModel;
  let llm: LLM;
  let outs: RequestOutput[];
  beforeAll(async () => {
    model = await assembleFixture(name);
    llm = await loadLLM(model.dir);
    const n = g.prompts[0].greedy_ids.length;
    const params = new SamplingParams({ temperature: 0, maxTokens: n, minTokens: n, logprobs: 20, promptLogprobs: 1 });
    outs = await llm.generate(g.prompts.map((p) => p.text), params);
  });
  afterAll(async () => {
    await llm?.dispose();
    await model?.dispose();
  });

  it('loads as its architecture', () => {
    expect(llm.engine.config.architecture).toBe(g.architecture);
  });

  it('tokenizes prompts like Hugging Face', () => {
    g.prompts.forEach((p, i) => expect(outs[i].promptTokenIds).toEqual(p.input_ids));
  });

  it('matches the top-20 logprobs of the first generated token', () => {
    g.prompts.forEach((p, i) => {
      const first = outs[i].outputs[0].logprobs![0];
      const byRank = [...first.entries()].filter(([, l]) => l.rank <= 20).sort((a, b) => a[1].rank - b[1].rank);
      expect(byRank.length).toBe(20);
      byRank.forEach(([id, l], r) => {
        const gid = p.last_logits_top20.ids[r];
        // Near-ties may swap ranks; then the values still agree.
        if (id !== gid) expect(Math.abs(p.last_logprobs_top20[r] - l.logprob)).toBeLessThan(1e-3);
        expect(l.logprob).toBeCloseTo(p.last_logprobs_top20[r], 3);
      });
    });
  });

  it('matches the argmax at every prompt position', () => {
    g.prompts.forEach((p, i) => {
      const plp = outs[i].promptLogprobs!;
      const argmax = plp.slice(1).map((m) => [...m!.entries()].find(([, l]) => l.rank === 1)![0]);
      argmax.push(outs[i].outputs[0].tokenIds[0]);
      expect(argmax).toEqual(p.argmax_per_position);
    });
  });

  it('greedy-decodes like Hugging Face', () => {
    g.prompts.forEach((p, i) => {
      const k = comparableSteps(p);
      expect(outs[i].outputs[0].tokenIds.slice(0, k)).toEqual(p.greedy_ids.slice(0, k));
      expect(outs[i].outputs[0].finishReason).toBe('length');
      // HF decodes the ids alone, which drops a SentencePiece leading space; we decode them after the prompt. HF ends
      // a text whose last token splits a UTF-8 character with U+FFFD; vLLM's detokenizer (and ours) holds it back.
      if (k === p.greedy_ids.length) expect(outs[i].outputs[0].text.trimStart()).toBe(p.greedy_text.trimStart().replace(/\uFFFD+$/, ''));
    });
  });

  it('reads config.v4.json (the transformers 4.x form) as config.json', async () => {
    const v5 = parseModelConfig(await readFixtureConfig(name), 'config.json');
    const v4 = parseModelConfig(await readFixtureConfig(name, 'config.v4.json'), 'config.v4.json');
    expect({ ...v4, raw: null }).toEqual({ ...v5, raw: null });
  });
});

describe.each(fixtures.filter((f) => !SUPPORTED.has(f)))('%s (not supported yet)', (name) => {
  it(`fails to load, naming what is missing`, async () => {
    const model = await assembleFixture(name);
    try {
      const expected = MISSING_FEATURE[name] ?? goldens[name].architecture;
      await expect(loadLLM(model.dir)).rejects.toThrow(expected);
    } finally {
      await model.dispose();
    }
  });
});

/**
 * transformers 5 saves experts as 3-D tensors (`mlp.experts.gate_up_proj` [E, 2I, H], `mlp.experts.down_proj`
 * [E, H, I]) and names Mixtral's block `mlp`; the fixtures hold the hub's per-expert form. The same weights re-saved in
 * the 3-D form must load and give exactly the same tokens and logprobs.
 */
describe.each(['mixtral-rand', 'qwen3moe-rand'])('%s with 3-D expert tensors', (name) => {
  it('loads and gives the per-expert form\'s tokens and logprobs', async () => {
    const perExpert = await assembleFixture(name);
    const fused = await assembleFixture(name);
    try {
      await rm(join(fused.dir, 'model.safetensors'));
      await writeFile(join(fused.dir, 'model.safetensors'), fuseExperts(await readFile(join(perExpert.dir, 'model.safetensors'))));
      const g = goldens[name];
      const params = new SamplingParams({ temperature: 0, maxTokens: 8, logprobs: 5 });
      const run = async (dir: string) => {
        const llm = await loadLLM(dir);
        try {
          return (await llm.generate(g.prompts.map((p) => p.text), params)).map((o) => ({ ids: o.outputs[0].tokenIds, lp: o.outputs[0].cumulativeLogprob }));
        } finally {
          await llm.dispose();
        }
      };
      expect(await run(fused.dir)).toEqual(await run(perExpert.dir));
    } finally {
      await perExpert.dispose();
      await fused.dispose();
    }
  });
});

/** A safetensors file with each layer's per-expert tensors stacked into transformers 5's 3-D expert tensors. */
function fuseExperts(file: Uint8Array): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const body = file.subarray(8 + n);
  const bytes = (k: string) => body.subarray(header[k].data_offsets[0], header[k].data_offsets[1]);
  const out = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
  const experts = new Map<string, Map<number, Record<string, string>>>(); // layer prefix -> expert -> proj -> name
  for (const k of Object.keys(header)) {
    if (k === '__metadata__') continue;
    const m = /^(model\.layers\.\d+)\.(?:block_sparse_moe|mlp)\.experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$/.exec(k);
    if (!m) {
      out.set(k.replace('.block_sparse_moe.gate.', '.mlp.gate.'), { dtype: header[k].dtype, shape: header[k].shape, data: bytes(k) });
      continue;
    }
    const proj = { w1: 'gate', w3: 'up', w2: 'down', gate_proj: 'gate', up_proj: 'up', down_proj: 'down' }[m[3]]!;
    const layer = experts.get(m[1]) ?? new Map();
    experts.set(m[1], layer);
    layer.set(Number(m[2]), { ...layer.get(Number(m[2])), [proj]: k });
  }
  for (const [p, layer] of experts) {
    const ids = [...layer.keys()].sort((a, b) => a - b);
    const cat = (names: string[]) => {
      const parts = names.map(bytes);
      const data = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
      parts.reduce((at, b) => (data.set(b, at), at + b.length), 0);
      return data;
    };
    const e0 = layer.get(0)!;
    const [I, H] = header[e0.gate].shape;
    const dtype = header[e0.gate].dtype;
    out.set(`${p}.mlp.experts.gate_up_proj`, { dtype, shape: [ids.length, 2 * I, H], data: cat(ids.flatMap((e) => [layer.get(e)!.gate, layer.get(e)!.up])) });
    out.set(`${p}.mlp.experts.down_proj`, { dtype, shape: [ids.length, H, I], data: cat(ids.map((e) => layer.get(e)!.down)) });
  }
  const h: Record<string, unknown> = {};
  let off = 0;
  for (const [k, t] of out) {
    h[k] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(h);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const res = new Uint8Array(8 + hb.length + off);
  new DataView(res.buffer).setBigUint64(0, BigInt(hb.length), true);
  res.set(hb, 8);
  let at = 8 + hb.length;
  for (const t of out.values()) (res.set(t.data, at), (at += t.data.length));
  return res;
}
