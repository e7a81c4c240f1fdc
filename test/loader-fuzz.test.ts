/**
 * Loader fuzz (issue 19): seeded random corruptions of real model files (tinystories-656K's safetensors header and
 * data, tokenizer.json, config.json, tokenizer_config.json, generation_config.json; the shared GGUF files' headers),
 * loaded the way LLM.create loads them (resolveModel: config, tokenizer, generation config; then every weight
 * streamed; some cases through LLM.create on the GPU). Each case either loads or fails with one of our named errors
 * (ModelFileError naming the file, InvalidArgumentError naming the field), within a time bound; afterwards the wasm
 * tokenizer and a greedy generation are exact (nothing native crashed or corrupted the shared core.wasm).
 *
 * Besides byte flips and truncations (which mostly break JSON syntax), JSON files get value mutations: a random
 * field set to a huge, negative, fractional, wrong-typed or deeply nested value, since hostile values in a valid file
 * are what reach allocation sizes, loop counts and offsets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, nodeGpu, SamplingParams } from '../bindings/node/index.js';
import { CapacityError, InvalidArgumentError, ModelFileError } from '../src/errors.js';
import { readGgufHeader } from '../src/loader/gguf.js';
import type { ModelSource, Platform } from '../src/platform.js';
import { resolveModel } from '../src/resolve-model.js';
import { Tokenizer } from '../src/tokenizer/index.js';
import { loadCore } from '../src/wasm/core.js';
import { MODELS, loadGoldens, modelDir } from './helpers/paths.js';
import { prng } from './helpers/tokenizer-strings.js';

type Files = Record<string, Uint8Array>;
type Rand = () => number;

const MODEL = 'tinystories-656K';
/** Each case's bound: the largest real load here takes ~0.2 s; a case past this is a stall. */
const CASE_MS = 5000;
const enc = new TextEncoder();
const dec = new TextDecoder();

function readFolder(dir: string): Files {
  const files: Files = {};
  for (const f of readdirSync(dir)) files[f] = new Uint8Array(readFileSync(join(dir, f)));
  return files;
}

/** A ModelSource over in-memory files (reads copy, so a reader cannot alias another case's bytes). */
function memFolder(name: string, files: Files): ModelSource {
  return {
    name,
    exists: async (f) => f in files,
    readText: async (f) => {
      if (!(f in files)) throw new ModelFileError(`${name}/${f}`, 'no such file'); // as bindings/node's folder
      return dec.decode(files[f]);
    },
    open: async (f) => {
      const bytes = files[f];
      if (!bytes) throw new ModelFileError(`${name}/${f}`, 'no such file');
      return { name: `${name}/${f}`, size: bytes.length, read: async (offset, length) => bytes.slice(offset, offset + length) };
    },
    list: async () => Object.keys(files),
  };
}

const memPlatform = (files: Files): Platform => ({ gpu: nodeGpu, openModel: async () => memFolder('mem', files) });

// ---- mutations ---------------------------------------------------------------------------------------------------

const int = (rand: Rand, n: number) => Math.floor(rand() * n);

/** `k` random bytes of [from, to) XORed with a random non-zero byte. */
function flip(bytes: Uint8Array, rand: Rand, from = 0, to = bytes.length): Uint8Array {
  const out = bytes.slice();
  const k = 1 + int(rand, 8);
  for (let i = 0; i < k; i++) out[from + int(rand, to - from)] ^= 1 + int(rand, 255);
  return out;
}

/** Cut at a random length in [from, to). */
const truncate = (bytes: Uint8Array, rand: Rand, from = 0, to = bytes.length) => bytes.slice(0, from + int(rand, to - from));

/** Marks a value to become `[[[...1]]]` nested this many levels deep. */
const DEEP = '\u0001deep:';

/** Values that break assumptions: sizes that would allocate the world, negatives, fractions, wrong types, nesting. */
function hostileValue(rand: Rand): unknown {
  const choices: (() => unknown)[] = [
    () => 2 ** 31,
    () => 2 ** 40,
    () => 1e308,
    () => Number.MAX_SAFE_INTEGER,
    () => -1,
    () => -(2 ** 31),
    () => 0,
    () => 0.5,
    () => 3.7,
    () => null,
    () => true,
    () => '',
    () => 'x'.repeat(1 + int(rand, 4096)),
    () => '\u0000\ud800',
    () => [],
    () => {},
    () => [1, 2, 3],
    () => ({ a: { b: { c: [] } } }),
    () => `${DEEP}${10 + int(rand, 100_000)}`,
    () => 'NaN',
    () => '1e400',
  ];
  return choices[int(rand, choices.length)]();
}

/** Every path to a value in a JSON tree (objects and arrays included), up to `limit` of them sampled evenly. */
function paths(v: unknown, limit = 20000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (x: unknown, p: (string | number)[]) => {
    if (out.length >= limit) return;
    out.push(p);
    if (Array.isArray(x)) x.forEach((y, i) => walk(y, [...p, i]));
    else if (typeof x === 'object' && x !== null) for (const [k, y] of Object.entries(x)) walk(y, [...p, k]);
  };
  walk(v, []);
  return out;
}

/** A JSON document with one to three random values replaced (or keys deleted). */
function mutateJson(bytes: Uint8Array, rand: Rand, pathList?: (string | number)[][]): Uint8Array {
  const doc = JSON.parse(dec.decode(bytes));
  const all = pathList ?? paths(doc);
  const k = 1 + int(rand, 3);
  for (let i = 0; i < k; i++) {
    const p = all[1 + int(rand, all.length - 1)];
    let parent = doc;
    for (const key of p.slice(0, -1)) parent = parent?.[key];
    if (typeof parent !== 'object' || parent === null) continue;
    const key = p[p.length - 1];
    if (rand() < 0.15 && !Array.isArray(parent)) delete parent[key];
    else parent[key] = hostileValue(rand);
  }
  // Deep nesting is spliced into the text (JSON.stringify itself would overflow the stack).
  const text = JSON.stringify(doc).replace(new RegExp(`"${DEEP}(\\d+)"`, 'g'), (_, d) => '['.repeat(Number(d)) + '1' + ']'.repeat(Number(d)));
  return enc.encode(text);
}

/** safetensors: [u64 header length][header JSON][data]. */
function safetensorsParts(bytes: Uint8Array): { header: Uint8Array; data: Uint8Array } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: bytes.subarray(8, 8 + len), data: bytes.subarray(8 + len) };
}

function safetensorsJoin(header: Uint8Array, data: Uint8Array, declared = header.length): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declared), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** One corruption of the model folder; returns its description. */
type Mutation = (files: Files, rand: Rand) => string;

const JSON_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

const FOLDER_MUTATIONS: [string, number, Mutation][] = [
  // [name, weight, mutation]
  ['json byte flip', 3, (f, r) => {
    const file = JSON_FILES[int(r, JSON_FILES.length)];
    f[file] = flip(f[file], r);
    return file;
  }],
  ['json truncation', 2, (f, r) => {
    const file = JSON_FILES[int(r, JSON_FILES.length)];
    f[file] = truncate(f[file], r);
    return file;
  }],
  ['json value', 8, (f, r) => {
    const file = JSON_FILES[int(r, JSON_FILES.length)];
    f[file] = mutateJson(f[file], r, file === 'tokenizer.json' ? TOKENIZER_PATHS : undefined);
    return file;
  }],
  ['safetensors header byte flip', 3, (f, r) => {
    const { header } = safetensorsParts(f['model.safetensors']);
    f['model.safetensors'] = flip(f['model.safetensors'], r, 0, 8 + header.length);
    return 'model.safetensors';
  }],
  ['safetensors header value', 4, (f, r) => {
    const { header, data } = safetensorsParts(f['model.safetensors']);
    f['model.safetensors'] = safetensorsJoin(mutateJson(header, r), data);
    return 'model.safetensors';
  }],
  ['safetensors header length', 1, (f, r) => {
    const { header, data } = safetensorsParts(f['model.safetensors']);
    const declared = [0, 1, header.length - 1, header.length + 1, 2 ** 32 + header.length, 2 ** 53, header.length + data.length + 1][int(r, 7)];
    f['model.safetensors'] = safetensorsJoin(header, data, declared);
    return 'model.safetensors';
  }],
  ['safetensors truncation', 2, (f, r) => {
    f['model.safetensors'] = truncate(f['model.safetensors'], r);
    return 'model.safetensors';
  }],
  ['safetensors data byte flip', 1, (f, r) => {
    const { header } = safetensorsParts(f['model.safetensors']);
    f['model.safetensors'] = flip(f['model.safetensors'], r, 8 + header.length);
    return 'model.safetensors';
  }],
  ['file missing', 1, (f, r) => {
    const names = ['config.json', 'tokenizer.json', 'model.safetensors', 'generation_config.json', 'tokenizer_config.json'];
    const file = names[int(r, names.length)];
    delete f[file];
    return file;
  }],
];

/** tokenizer.json's paths, without the tens of thousands of vocab and merge entries crowding out the rest. */
let TOKENIZER_PATHS: (string | number)[][] | undefined;

function pick<T>(list: [string, number, T][], rand: Rand): [string, T] {
  const total = list.reduce((s, [, w]) => s + w, 0);
  let x = rand() * total;
  for (const [name, w, m] of list) {
    if ((x -= w) < 0) return [name, m];
  }
  return [list[0][0], list[0][2]];
}

// ---- checks ------------------------------------------------------------------------------------------------------

/** Our named errors: the file (ModelFileError's `file`, a .gguf name) or the field (InvalidArgumentError). */
function expectNamedError(err: unknown, file: string, what: string): void {
  const ok = err instanceof ModelFileError || err instanceof InvalidArgumentError || err instanceof CapacityError;
  if (!ok) throw new Error(`${what}: expected a named error, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  if (err instanceof ModelFileError) expect(err.message, what).toContain(file.replace(/^.*\//, ''));
}

/** Loads the folder as LLM.create does, short of the GPU: config, tokenizer, generation config, every weight. */
async function loadOnCpu(files: Files, model?: string): Promise<'loaded'> {
  const m = await resolveModel(memPlatform(files), { model });
  try {
    m.tokenizer.encode('Once upon a time, there was a little girl.');
    m.tokenizer.decode(m.tokenizer.encode('<|end_story|> hello'));
    const weights = await m.openWeights();
    for await (const _ of weights.stream(weights.tensors.values()));
  } finally {
    m.tokenizer.dispose();
  }
  return 'loaded';
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    expect(performance.now() - t0, `${what} took too long`).toBeLessThan(CASE_MS);
  }
}

describe('loader fuzz', () => {
  const original = readFolder(modelDir(MODEL));
  const golden = loadGoldens()[MODEL].prompts[0];
  let canaryTokenizer: Tokenizer;
  let llm: LLM;
  /** Greedy ids of the first golden prompt through a loaded LLM: must be HF's. */
  const canary = async () => {
    expect(canaryTokenizer.encode(golden.text)).toEqual(golden.input_ids);
    const [out] = await llm.generate({ promptTokenIds: golden.input_ids }, new SamplingParams({ temperature: 0, maxTokens: 8, minTokens: 8 }));
    expect(out.outputs[0].tokenIds).toEqual(golden.greedy_ids.slice(0, 8));
  };

  beforeAll(async () => {
    const doc = JSON.parse(dec.decode(original['tokenizer.json']));
    TOKENIZER_PATHS = paths(doc).filter((p) => !((p[1] === 'vocab' || p[1] === 'merges') && p.length > 2 && int(prng(p.length + String(p[2]).length), 50) !== 0));
    canaryTokenizer = await Tokenizer.fromSource(memFolder('canary', original));
    llm = await LLM.create({ model: modelDir(MODEL), dtype: 'float32', kvCacheMemoryBytes: 8 << 20, maxNumSeqs: 4, warmup: false });
    await canary();
  });
  afterAll(async () => {
    canaryTokenizer?.dispose();
    await llm?.dispose();
  });

  it('the unmodified folder loads', async () => {
    expect(await loadOnCpu(original)).toBe('loaded');
  });

  it('1500 corrupted HF folders: each loads or fails with a named error, in bounded time', async () => {
    const rand = prng(0x10ad);
    const tally: Record<string, [number, number]> = {};
    for (let i = 0; i < 1500; i++) {
      const files = { ...original };
      const [name, mutate] = pick(FOLDER_MUTATIONS, rand);
      const file = mutate(files, rand);
      const what = `case ${i} (${name}, ${file})`;
      const result = await timed(what, () => loadOnCpu(files).catch((e: unknown) => e));
      if (result !== 'loaded') expectNamedError(result, file, what);
      const t = (tally[name] ??= [0, 0]);
      t[result === 'loaded' ? 0 : 1]++;
    }
    // Every kind of mutation was tried, and most of them fail (a fuzz that always loads tests nothing).
    expect(Object.keys(tally).length).toBe(FOLDER_MUTATIONS.length);
    console.log('loaded / failed by mutation:', JSON.stringify(tally));
    await canary();
  }, 300_000);

  it('300 GGUF files with corrupted headers (byte flips, truncations): each loads or fails with a named error', async () => {
    const rand = prng(0x6607);
    const tally: Record<string, [number, number]> = {};
    for (const name of GGUF_FILES) {
      const bytes = new Uint8Array(readFileSync(join(MODELS, 'gguf', name)));
      const h = await readGgufHeader({ name, size: bytes.length, read: async (o, l) => bytes.slice(o, o + l) });
      for (let i = 0; i < 100; i++) {
        const kind = rand() < 0.75 ? 'flip' : 'truncate';
        // Flips mostly where the counts, lengths, types, dims and offsets are: the header up to the data.
        const mutated = kind === 'flip' ? flip(bytes, rand, 0, h.dataOffset) : truncate(bytes, rand, 0, h.dataOffset + 64);
        const what = `${name} case ${i} (${kind})`;
        const result = await timed(what, () => loadOnCpu({ [name]: mutated }, name).catch((e: unknown) => e));
        if (result !== 'loaded') expectNamedError(result, name, what);
        const t = (tally[`${name} ${kind}`] ??= [0, 0]);
        t[result === 'loaded' ? 0 : 1]++;
      }
    }
    console.log('loaded / failed:', JSON.stringify(tally));
    await canary();
  }, 300_000);

  it('config.json and generation_config.json values through LLM.create: a model or a named error', async () => {
    const rand = prng(0xc0f1);
    const tally = [0, 0];
    for (let i = 0; i < 60; i++) {
      const files = { ...original };
      const file = rand() < 0.8 ? 'config.json' : 'generation_config.json';
      files[file] = mutateJson(files[file], rand);
      const what = `case ${i} (${file}: ${dec.decode(files[file]).slice(0, 400)})`;
      const result = await timed(what, async () => {
        try {
          const m = await LLM.create({ platform: memPlatform(files), dtype: 'float32', kvCacheMemoryBytes: 8 << 20, maxNumSeqs: 4, warmup: false });
          await m.generate('Once upon a time', new SamplingParams({ maxTokens: 2 })).finally(() => m.dispose());
          return 'loaded';
        } catch (e) {
          return e;
        }
      });
      if (result !== 'loaded') expectNamedError(result, file, what);
      tally[result === 'loaded' ? 0 : 1]++;
    }
    console.log('loaded / failed:', JSON.stringify(tally));
    await canary();
  }, 300_000);
});

describe('regressions found by the fuzz', () => {
  const original = readFolder(modelDir(MODEL));
  const withConfig = (patch: Record<string, unknown>): Files => {
    const cfg = JSON.parse(dec.decode(original['config.json']));
    return { ...original, 'config.json': enc.encode(JSON.stringify({ ...cfg, ...patch })) };
  };

  // vocab_size 2^40 beside a [2048, 128] LM head: the weight slots were sized from the config before any tensor's
  // shape was checked, 2^18 buffers of 2 GiB, and lavapipe's out-of-memory ended the process (std::bad_alloc).
  it.each([
    ['vocab_size', 2 ** 40],
    ['vocab_size', 2 ** 31],
    ['hidden_size', 2 ** 40],
    ['intermediate_size', 2 ** 40],
    ['num_key_value_heads', 2 ** 30],
  ])('config %s = %d beside the real checkpoint: a named error before GPU buffers are sized', async (key, value) => {
    const t0 = performance.now();
    const err = await LLM.create({ platform: memPlatform(withConfig({ [key]: value })), dtype: 'float32', kvCacheMemoryBytes: 8 << 20, maxNumSeqs: 4, warmup: false }).then(
      (m) => m.dispose().then(() => null),
      (e: unknown) => e,
    );
    expectNamedError(err, key === 'num_key_value_heads' ? 'config.json' : 'model.safetensors', `${key} = ${value}`);
    if (key === 'vocab_size') expect((err as Error).message).toMatch(/model\.safetensors: tensor lm_head\.weight has shape \[2048,128\], expected/);
    expect(performance.now() - t0).toBeLessThan(CASE_MS);
  });

  // A tokenizer.json that fails after its vocabulary went into core.wasm (merges, merge_ranks, unk_token, flags, a
  // bad merge) used to keep the vocabulary's tables: 50 failed loads of a 128k vocabulary grew the module by ~150 MB.
  it('50 tokenizers that fail halfway through loading leave core.wasm memory as it was', async () => {
    const json = JSON.parse(readFileSync(join(modelDir('llama3-rand'), 'tokenizer.json'), 'utf8'));
    const breakers: [string, (j: { model: Record<string, unknown> }) => void][] = [
      ['merges not a list', (j) => (j.model.merges = 'x')],
      ['a merge of unknown tokens', (j) => ((j.model.merges as unknown[])[5] = 'qqqq zzzz')],
      ['a merge of the wrong type', (j) => ((j.model.merges as unknown[])[7] = 5)],
      ['merge_ranks of the wrong length', (j) => (j.model.merge_ranks = [1, 2])],
      ['unk_token not a string', (j) => (j.model.unk_token = 5)],
    ];
    const texts = breakers.map(([, b]) => {
      const j = structuredClone(json);
      b(j);
      return JSON.stringify(j);
    });
    const core = await loadCore();
    const failOnce = async (i: number) => {
      const err = await Tokenizer.fromJson(texts[i % texts.length]).then(
        (t) => (t.dispose(), null),
        (e: unknown) => e,
      );
      expect(err, breakers[i % texts.length][0]).toBeInstanceOf(ModelFileError);
      expect((err as Error).message).toContain('tokenizer.json');
    };
    // Warm-up: the allocator's pools reach their size for these tables (one good load, one failure of each kind).
    (await Tokenizer.fromJson(JSON.stringify(json))).dispose();
    for (let i = 0; i < texts.length; i++) await failOnce(i);
    const before = core.exports.memory.buffer.byteLength;
    for (let i = 0; i < 50; i++) await failOnce(i);
    const after = core.exports.memory.buffer.byteLength;
    expect(after - before).toBe(0);
    // And the module still tokenizes exactly.
    const tok = await Tokenizer.fromJson(JSON.stringify(json));
    const golden = loadGoldens()['llama3-rand'].prompts[0];
    expect(tok.encode(golden.text)).toEqual(golden.input_ids);
    tok.dispose();
  }, 120_000);
});

const GGUF_FILES = ['stories260K.gguf', 'tinystories-656K-q8_0.gguf', 'llama-2-tiny-random.gguf'];
