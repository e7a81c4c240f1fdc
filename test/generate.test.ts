/**
 * LLM.generate end to end: batch invariance, sampling with seeds, EOS and length, the embedded default model,
 * streaming, and clear errors for bad input and oversized requests.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapacityError, InvalidArgumentError, LLM, ModelFileError, SamplingParams } from '../bindings/node/index.js';
import { modelDir } from './helpers/paths.js';
import { loadLLM } from './helpers/llm.js';

const PROMPTS = [
  'Once upon a time',
  'The little dog ran to the park and',
  'Lily had a red ball. She',
  'One day, a big bird flew over the house. The bird was very hungry, so it looked for food in the garden',
  'Tom',
  'The sun was shining and the children were playing outside. Their mother called them to come inside for lunch, but',
  'A cat',
  'There was a boy who loved to read books about dragons and castles and',
];

describe('tinystories-656K', () => {
  let llm: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
  });
  afterAll(() => llm.dispose());

  it('gives each prompt the same greedy output alone and inside a batch of 8 mixed-length prompts', async () => {
    const params = new SamplingParams({ temperature: 0, maxTokens: 40 });
    const batch = await llm.generate(PROMPTS, params);
    for (let i = 0; i < PROMPTS.length; i++) {
      const [alone] = await llm.generate(PROMPTS[i], params);
      expect(batch[i].outputs[0].tokenIds).toEqual(alone.outputs[0].tokenIds);
      expect(batch[i].outputs[0].text).toBe(alone.outputs[0].text);
      expect(batch[i].prompt).toBe(PROMPTS[i]);
    }
  });

  it('reproduces seeded sampling alone and in a batch, and differs across seeds', async () => {
    const p = (seed: number) => new SamplingParams({ temperature: 1, maxTokens: 24, seed });
    const [alone] = await llm.generate(PROMPTS[0], p(7));
    const batch = await llm.generate(PROMPTS, PROMPTS.map((_, i) => (i === 3 ? p(7) : p(100 + i))));
    const [again] = await llm.generate({ prompt: PROMPTS[0] }, p(7));
    expect(again.outputs[0].tokenIds).toEqual(alone.outputs[0].tokenIds);
    const [other] = await llm.generate(PROMPTS[0], p(8));
    expect(other.outputs[0].tokenIds).not.toEqual(alone.outputs[0].tokenIds);
    const [b3alone] = await llm.generate(PROMPTS[3], p(7));
    expect(batch[3].outputs[0].tokenIds).toEqual(b3alone.outputs[0].tokenIds);
  });

  it("stops at EOS with finishReason 'stop' and at maxTokens with 'length'", async () => {
    const [long] = await llm.generate(PROMPTS[0], new SamplingParams({ temperature: 0, maxTokens: 400 }));
    expect(long.outputs[0].finishReason).toBe('stop');
    expect(long.outputs[0].stopReason).toBeNull();
    expect(long.outputs[0].tokenIds.at(-1)).toBe(2); // <|end_story|>, kept in the ids as vLLM does
    // The EOS token's own text is not appended (the model itself spells '<|end_story|>' in pieces before it).
    expect(long.outputs[0].text.endsWith('▁<|end_story|>')).toBe(false);
    const [short] = await llm.generate(PROMPTS[0], new SamplingParams({ temperature: 0, maxTokens: 5 }));
    expect(short.outputs[0].finishReason).toBe('length');
    expect(short.outputs[0].tokenIds).toEqual(long.outputs[0].tokenIds.slice(0, 5));
    const n = long.outputs[0].tokenIds.length;
    const [ignored] = await llm.generate(PROMPTS[0], new SamplingParams({ temperature: 0, maxTokens: n + 5, ignoreEos: true }));
    expect(ignored.outputs[0].tokenIds).toHaveLength(n + 5);
    const [min] = await llm.generate(PROMPTS[0], new SamplingParams({ temperature: 0, maxTokens: n + 5, minTokens: n + 2 }));
    expect(min.outputs[0].tokenIds.length).toBeGreaterThanOrEqual(n + 2);
    expect(min.outputs[0].tokenIds.slice(0, n - 1)).toEqual(long.outputs[0].tokenIds.slice(0, n - 1));
  });

  it('defaults to 16 tokens as vLLM', async () => {
    const [out] = await llm.generate('Tom and Sue', new SamplingParams({ temperature: 0, ignoreEos: true }));
    expect(out.outputs[0].tokenIds).toHaveLength(16);
  });

  it('streams deltas that add up to the final text', async () => {
    const params = new SamplingParams({ temperature: 0, maxTokens: 30, outputKind: 'delta' });
    let text = '';
    let ids: number[] = [];
    let last;
    for await (const out of llm.engine.addRequest({ prompt: PROMPTS[1], params })) {
      text += out.outputs[0].text;
      ids = ids.concat(out.outputs[0].tokenIds);
      last = out;
    }
    const [full] = await llm.generate(PROMPTS[1], new SamplingParams({ temperature: 0, maxTokens: 30 }));
    expect(last!.finished).toBe(true);
    expect(text).toBe(full.outputs[0].text);
    expect(ids).toEqual(full.outputs[0].tokenIds);
  });

  it('rejects bad input with errors that name the field, and keeps working', async () => {
    expect(() => new SamplingParams({ temperature: -1 })).toThrow(/temperature/);
    expect(() => new SamplingParams({ topP: 0 })).toThrow(/topP/);
    expect(() => new SamplingParams({ minTokens: 5, maxTokens: 2 })).toThrow(/minTokens/);
    await expect(llm.generate({ promptTokenIds: [1, 99999] })).rejects.toThrow(InvalidArgumentError);
    await expect(llm.generate('', new SamplingParams({ maxTokens: 2 }))).resolves.toHaveLength(1); // BOS alone is a prompt
    await expect(llm.generate(['ok', { promptTokenIds: [-1] }])).rejects.toThrow(/promptTokenIds/);
    const [out] = await llm.generate('Tom', new SamplingParams({ temperature: 0, maxTokens: 3 }));
    expect(out.outputs[0].tokenIds).toHaveLength(3);
  });
});

describe('capacity', () => {
  it('rejects a prompt larger than the KV pool with a clear error', async () => {
    const llm = await loadLLM(modelDir('tinystories-656K'), { numGpuBlocksOverride: 4, blockSize: 16, maxModelLen: 64 });
    const long = { promptTokenIds: Array.from({ length: 100 }, (_, i) => 100 + (i % 50)) };
    await expect(llm.generate(long)).rejects.toThrow(/100 tokens/);
    const fits = { promptTokenIds: Array.from({ length: 40 }, (_, i) => 100 + i) };
    await expect(llm.generate(fits, new SamplingParams({ maxTokens: 8 }))).resolves.toHaveLength(1);
    await llm.dispose();
  });

  it('runs more requests than fit the KV pool at once, waiting instead of corrupting them', async () => {
    const small = await loadLLM(modelDir('tinystories-656K'), { numGpuBlocksOverride: 6, blockSize: 16, maxModelLen: 64 });
    const big = await loadLLM(modelDir('tinystories-656K'));
    const params = new SamplingParams({ temperature: 0, maxTokens: 30, ignoreEos: true });
    const a = await small.generate(PROMPTS, params);
    const b = await big.generate(PROMPTS, params);
    expect(a.map((o) => o.outputs[0].tokenIds)).toEqual(b.map((o) => o.outputs[0].tokenIds));
    await small.dispose();
    await big.dispose();
    expect(CapacityError).toBeDefined();
  });
});

describe('default model and malformed files', () => {
  it('loads the embedded default model when none is given', async () => {
    const llm = new LLM({ dtype: 'float32' });
    const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 16 }));
    expect(out.outputs[0].text.length).toBeGreaterThan(10);
    // The embedded bf16 copy is lossless: same greedy ids as the f32 fixture.
    const ref = await loadLLM(modelDir('tinystories-656K'));
    const [r] = await ref.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 16 }));
    expect(out.outputs[0].tokenIds).toEqual(r.outputs[0].tokenIds);
    await llm.dispose();
    await ref.dispose();
  });

  it('reports weight upload progress up to the checkpoint size', async () => {
    const events: { phase?: string; file: string; loadedBytes: number; totalBytes: number }[] = [];
    const llm = await loadLLM(modelDir('stories260K'), { onProgress: (p) => events.push(p) });
    expect(events.length).toBeGreaterThan(1);
    expect(events.every((e) => e.phase === 'upload' && e.file === 'model.safetensors')).toBe(true);
    const last = events.at(-1)!;
    expect(last.loadedBytes).toBe(last.totalBytes);
    expect(events.every((e, i) => i === 0 || e.loadedBytes >= events[i - 1].loadedBytes)).toBe(true);
    await llm.dispose();
  });

  it("loadFormat 'dummy' builds every architecture's weights from config.json alone", async () => {
    for (const name of ['llama3-rand', 'gpt2-rand', 'opt-rand', 'phi3-rand', 'qwen3-rand']) {
      const llm = await loadLLM(modelDir(name), { loadFormat: 'dummy' });
      const [out] = await llm.generate({ promptTokenIds: [1, 2, 3] }, new SamplingParams({ temperature: 0, maxTokens: 4, ignoreEos: true }));
      expect(out.outputs[0].tokenIds).toHaveLength(4);
      await llm.dispose();
    }
  });

  function copyModel(name: string): string {
    const dir = mkdtempSync(join(tmpdir(), `webgpu-llm-${name}-`));
    for (const f of readdirSync(modelDir(name))) copyFileSync(join(modelDir(name), f), join(dir, f));
    return dir;
  }

  it('names the file and the problem for truncated or corrupt files', async () => {
    const trunc = copyModel('stories260K');
    const st = readFileSync(join(trunc, 'model.safetensors'));
    writeFileSync(join(trunc, 'model.safetensors'), st.subarray(0, st.length >> 1));
    await expect(loadLLM(trunc)).rejects.toThrow(/model\.safetensors/);
    await expect(loadLLM(trunc)).rejects.toBeInstanceOf(ModelFileError);

    const badCfg = copyModel('stories260K');
    writeFileSync(join(badCfg, 'config.json'), '{"architectures": ["LlamaForCausalLM"], "hidden_size": ');
    await expect(loadLLM(badCfg)).rejects.toThrow(/config\.json/);

    const badTok = copyModel('stories260K');
    writeFileSync(join(badTok, 'tokenizer.json'), '{"model": {"type": "Unigram"}}');
    await expect(loadLLM(badTok)).rejects.toThrow(/tokenizer\.json/);

    await expect(loadLLM('/nonexistent/model')).rejects.toThrow(/nonexistent/);
  });
});
