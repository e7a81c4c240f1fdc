/**
 * The fixture checkpoints of test/fixtures (tiny random models of the architectures the engine is growing into, made
 * by test/fixtures/make_fixtures.py) against Hugging Face transformers' goldens, compared as models.test.ts compares
 * the shared models: prompt token ids, top-20 logprobs of the first generated token, argmax at every prompt position,
 * greedy continuations while the golden margins are usable (helpers/golden-checks.ts).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig, SamplingParams, type LLM, type RequestOutput } from '../bindings/node/index.js';
import { assembleFixture, loadFixtureGoldens, readFixtureConfig, type AssembledModel } from './helpers/fixtures.js';
import { loadLLM } from './helpers/llm.js';
import { goldenChecks, goldenRun } from './helpers/golden-checks.js';

const goldens = loadFixtureGoldens();

describe.each(Object.keys(goldens))('%s', (name) => {
  const g = goldens[name];
  let model: AssembledModel;
  let llm: LLM;
  let outs: RequestOutput[];
  beforeAll(async () => {
    model = await assembleFixture(name);
    llm = await loadLLM(model.dir);
    outs = await goldenRun(llm, g.prompts);
  });
  afterAll(async () => {
    await llm?.dispose();
    await model?.dispose();
  });

  it('loads as its architecture', () => {
    expect(llm.engine.config.architecture).toBe(g.architecture);
  });

  goldenChecks(g.prompts, () => outs);

  it('reads config.v4.json (the transformers 4.x form) as config.json', async () => {
    const v5 = parseModelConfig(await readFixtureConfig(name), 'config.json');
    const v4 = parseModelConfig(await readFixtureConfig(name, 'config.v4.json'), 'config.v4.json');
    expect({ ...v4, raw: null }).toEqual({ ...v5, raw: null });
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
