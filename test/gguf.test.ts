/**
 * GGUF header reading (src/loader/gguf.ts) on the three shared GGUF files and on corrupted copies; GGUF metadata ->
 * ModelConfig and tensor names / rotary row order (src/models/gguf-config.ts) against the safetensors twins.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../src/errors.js';
import { GgufFormatError, readGgufHeader, readGgufTensorBytes, type GgufErrorKind, type GgufValue } from '../src/loader/gguf.js';
import { readSafetensorsHeader } from '../src/loader/safetensors.js';
import {
  ggufCheckpoint, ggufModelConfig, ggufPermutesQk, hfConfigFromGguf, hfTensorName, readGgufTensorAsHf, unpermuteRotaryRows,
} from '../src/models/gguf-config.js';
import { parseModelConfig, weightTable } from '../src/models/registry.js';
import type { ByteSource } from '../src/platform.js';
import { MODELS, modelDir } from './helpers/paths.js';
import { prng } from './helpers/tokenizer-strings.js';

const GGUF = join(MODELS, 'gguf');
const fileBytes = (name: string) => new Uint8Array(readFileSync(join(GGUF, name)));

/** An in-memory ByteSource that records every read, so tests can check only the header is fetched. */
function memSource(bytes: Uint8Array, name = 'mem.gguf'): ByteSource & { reads: [number, number][] } {
  const reads: [number, number][] = [];
  return {
    name,
    size: bytes.length,
    reads,
    read: async (offset, length) => {
      reads.push([offset, length]);
      return bytes.slice(offset, offset + length);
    },
  };
}

async function expectGgufError(bytes: Uint8Array, kind: GgufErrorKind, message: RegExp): Promise<void> {
  const err = await readGgufHeader(memSource(bytes, 'bad.gguf')).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GgufFormatError);
  expect(err).toBeInstanceOf(ModelFileError);
  expect((err as GgufFormatError).kind).toBe(kind);
  expect((err as Error).message).toMatch(/^bad\.gguf: /);
  expect((err as Error).message).toMatch(message);
}

/** Byte offset just after the key string `key` (where its u32 value type starts). */
function afterKey(bytes: Uint8Array, key: string): number {
  const k = new TextEncoder().encode(key);
  outer: for (let i = 0; i + k.length <= bytes.length; i++) {
    for (let j = 0; j < k.length; j++) if (bytes[i + j] !== k[j]) continue outer;
    return i + k.length;
  }
  throw new Error(`key ${key} not found`);
}

describe('readGgufHeader on the shared files', () => {
  it('stories260K.gguf (F32): metadata, every tensor, only the header read', async () => {
    const bytes = fileBytes('stories260K.gguf');
    const src = memSource(bytes);
    const h = await readGgufHeader(src);
    expect(h.version).toBe(3);
    expect(h.alignment).toBe(32);
    expect(h.metadata.get('general.architecture')).toBe('llama');
    expect(h.metadata.get('llama.block_count')).toBe(5);
    expect(h.metadata.get('tokenizer.ggml.model')).toBe('llama');
    expect((h.metadata.get('tokenizer.ggml.tokens') as string[]).slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(h.metadata.get('tokenizer.ggml.scores')).toBeInstanceOf(Float32Array);
    expect(h.metadata.get('tokenizer.ggml.token_type')).toBeInstanceOf(Int32Array);
    expect(h.tensors).toHaveLength(3 + 5 * 9);
    expect(h.tensors[0]).toEqual({
      name: 'token_embd.weight', type: 0, typeName: 'F32', ne: [64, 512], shape: [512, 64], offset: h.dataOffset, byteLength: 512 * 64 * 4,
    });
    expect(h.dataOffset % 32).toBe(0);
    expect(h.dataOffset).toBeGreaterThanOrEqual(h.headerBytes);
    // The last tensor ends at the end of the file.
    const last = h.tensors.reduce((a, b) => (b.offset > a.offset ? b : a));
    expect(last.offset + last.byteLength).toBe(bytes.length);
    // One read of the first MiB, which holds the whole header; tensor data was not requested beyond it.
    expect(src.reads).toEqual([[0, 1 << 20]]);
  });

  it('tinystories-656K-q8_0.gguf: Q8_0 byte sizes (34 bytes per 32 values)', async () => {
    const h = await readGgufHeader(memSource(fileBytes('tinystories-656K-q8_0.gguf')));
    const embd = h.tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(embd).toMatchObject({ typeName: 'Q8_0', shape: [2048, 128], byteLength: (2048 * 128 / 32) * 34 });
    expect(h.tensors.find((t) => t.name === 'output_norm.weight')).toMatchObject({ typeName: 'F32', shape: [128] });
    expect(h.metadata.get('tokenizer.ggml.add_bos_token')).toBe(true);
    expect(h.metadata.get('general.languages')).toEqual(['en']);
  });

  it('llama-2-tiny-random.gguf: the 32000-token vocabulary, only the header window read', async () => {
    const bytes = fileBytes('llama-2-tiny-random.gguf');
    const src = memSource(bytes);
    const h = await readGgufHeader(src);
    expect((h.metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(32000);
    expect(h.tensors.map((t) => t.typeName)).toContain('F16');
    // Nothing past the first window: the 724 KB header fits in it.
    for (const [off, len] of src.reads) expect(off + len).toBeLessThanOrEqual(1 << 20);
  });

  it('tensor bytes read through the ByteSource equal the safetensors twin (F32 norm weights)', async () => {
    const bytes = fileBytes('stories260K.gguf');
    const src = memSource(bytes);
    const h = await readGgufHeader(src);
    const st = await twinTensors('stories260K');
    const g = h.tensors.find((t) => t.name === 'output_norm.weight')!;
    expect(await readGgufTensorBytes(src, g)).toEqual(st.get('model.norm.weight'));
  });
});

describe('readGgufHeader on corrupted files', () => {
  const good = fileBytes('stories260K.gguf');
  const edit = (f: (b: Uint8Array, v: DataView) => void): Uint8Array => {
    const b = good.slice();
    f(b, new DataView(b.buffer));
    return b;
  };

  it('bad magic, unsupported versions', async () => {
    await expectGgufError(edit((b) => b.set([0x47, 0x47, 0x4a, 0x54])), 'bad-magic', /not a GGUF file/);
    await expectGgufError(new Uint8Array(2), 'truncated', /truncated/);
    await expectGgufError(edit((_, v) => v.setUint32(4, 1, true)), 'unsupported-version', /version 1 .*obsolete/);
    await expectGgufError(edit((_, v) => v.setUint32(4, 3 << 24, true)), 'unsupported-version', /big-endian/);
  });

  it('every truncation inside the header is a named error', async () => {
    const h = await readGgufHeader(memSource(good));
    const cuts = [5, 12, 23, 40, 100, 1000, 5000, h.headerBytes - 1, h.headerBytes + 100, good.length - 1];
    for (const cut of cuts) await expectGgufError(good.slice(0, cut), 'truncated', /truncated/);
  });

  it('absurd counts and lengths are refused before any work', async () => {
    // tensor count 2^40 and kv count 2^40: beyond the limits.
    await expectGgufError(edit((_, v) => v.setUint32(12, 256, true)), 'limit', /tensor count .* absurdly large|exceeds/);
    await expectGgufError(edit((_, v) => v.setUint32(16, 1 << 20, true)), 'limit', /metadata count .* exceeds the limit/);
    // kv count within the limit but more than the file could hold (12 bytes each at least).
    await expectGgufError(edit((_, v) => v.setUint32(16, 60000, true)).slice(0, 500_000), 'truncated', /metadata count 60000 cannot fit/);
    // The token array's length (after the key: u32 ARRAY, u32 STRING, u64 length).
    const at = afterKey(good, 'tokenizer.ggml.tokens') + 8;
    await expectGgufError(edit((_, v) => v.setUint32(at, 1 << 25, true)), 'limit', /array length .* exceeds the limit/);
    await expectGgufError(edit((_, v) => v.setUint32(at, 5_000_000, true)), 'truncated', /array length 5000000 cannot fit/);
    // The first token string's length (u64 right after the array length).
    await expectGgufError(edit((_, v) => v.setUint32(at + 8, 0xfffffff0, true)), 'limit', /string length .* exceeds the limit/);
  });

  it('random corruption of header bytes: a parse or a GgufFormatError, never anything else', async () => {
    const h = await readGgufHeader(memSource(good));
    const rand = prng(2026);
    let refused = 0;
    for (let trial = 0; trial < 400; trial++) {
      const b = good.slice();
      // 1-4 random bytes anywhere in the header, biased to the first 4 KB where counts, types and lengths sit.
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const at = Math.floor(rand() * (rand() < 0.5 ? 4096 : h.headerBytes));
        b[at] = Math.floor(rand() * 256);
      }
      const err = await readGgufHeader(memSource(b)).then(() => null, (e: unknown) => e);
      if (err !== null) {
        expect(err, String(err)).toBeInstanceOf(GgufFormatError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(20);
  });

  it('unknown value types, nested arrays, bad tensor infos', async () => {
    const typeAt = afterKey(good, 'general.architecture');
    await expectGgufError(edit((_, v) => v.setUint32(typeAt, 13, true)), 'unknown-type', /"general.architecture" has unknown value type 13/);
    const elemAt = afterKey(good, 'tokenizer.ggml.tokens') + 4;
    await expectGgufError(edit((_, v) => v.setUint32(elemAt, 9, true)), 'unknown-type', /nested arrays/);
    await expectGgufError(edit((_, v) => v.setUint32(elemAt, 99, true)), 'unknown-type', /array of unknown value type 99/);
    // token_embd.weight's info: name, u32 n_dims, u64 ne[2], u32 type, u64 offset.
    const t = afterKey(good, 'token_embd.weight');
    await expectGgufError(edit((_, v) => v.setUint32(t, 5, true)), 'invalid', /5 dimensions/);
    await expectGgufError(edit((_, v) => v.setUint32(t + 4 + 16, 77, true)), 'unknown-type', /unknown ggml type 77/);
    // F64 doubles token_embd's size: it runs into output_norm.weight.
    await expectGgufError(edit((_, v) => v.setUint32(t + 4 + 16, 28, true)), 'invalid', /overlap/);
    await expectGgufError(edit((_, v) => v.setUint32(t + 4 + 16 + 4, 3, true)), 'invalid', /not aligned/);
    await expectGgufError(edit((_, v) => v.setUint32(t + 4 + 16 + 4, 1 << 30, true)), 'truncated', /ends at byte .* truncated/);
  });
});

/** The safetensors twin's tensors by name (raw bytes). */
async function twinTensors(folder: string): Promise<Map<string, Uint8Array>> {
  const bytes = new Uint8Array(readFileSync(join(modelDir(folder), 'model.safetensors')));
  const h = await readSafetensorsHeader(memSource(bytes, 'model.safetensors'), 'model.safetensors');
  return new Map(h.tensors.map((t) => [t.name, bytes.slice(t.offset, t.offset + t.byteLength)]));
}

describe('GGUF -> ModelConfig', () => {
  /** Fields of ModelConfig that decide the forward and the weight table. */
  const FIELDS = [
    'architecture', 'modelType', 'hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize',
    'vocabSize', 'norm', 'normEps', 'preNorm', 'finalNorm', 'act', 'gatedMlp', 'positions', 'learnedPositionOffset',
    'rope', 'slidingWindow', 'qkvBias', 'oBias', 'mlpBias', 'normBias', 'qkNorm', 'wordEmbedProjDim', 'conv1dWeights',
    'bosTokenId', 'eosTokenIds', 'dtype',
  ] as const;

  const pairs: [string, string, Record<string, unknown>][] = [
    // stories260K.gguf: context_length 2048 where the twin's config says 512 (llama2.c's converter wrote the
    // training default), and it stores output.weight (a copy of the embeddings) where the twin ties them.
    ['stories260K.gguf', 'stories260K', { maxModelLen: 2048, tieWordEmbeddings: false }],
    // A quantized file does not say the dtype it was made from: f16 (the dense weights' and KV cache's dtype).
    ['tinystories-656K-q8_0.gguf', 'tinystories-656K', { maxModelLen: 512, tieWordEmbeddings: true, dtype: 'float16' }],
  ];
  for (const [file, twin, own] of pairs) {
    it(`${file} equals ${twin}/config.json on ${FIELDS.length} fields`, async () => {
      const h = await readGgufHeader(memSource(fileBytes(file), file));
      const cfg = ggufModelConfig(h, file);
      const ref = parseModelConfig(readFileSync(join(modelDir(twin), 'config.json'), 'utf8'));
      for (const k of FIELDS) if (!(k in own)) expect([k, cfg[k]]).toEqual([k, ref[k]]);
      expect(cfg).toMatchObject(own);
    });
  }

  it('llama-2-tiny-random.gguf (not the twin of tiny-random-llama2: hidden 8, 1 layer, 2 heads)', async () => {
    const h = await readGgufHeader(memSource(fileBytes('llama-2-tiny-random.gguf')));
    const cfg = ggufModelConfig(h, 'llama-2-tiny-random.gguf');
    expect(cfg).toMatchObject({
      architecture: 'LlamaForCausalLM', hiddenSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 2, headDim: 4,
      intermediateSize: 32, vocabSize: 32000, maxModelLen: 4096, normEps: 1e-5, bosTokenId: 1, eosTokenIds: [2],
      tieWordEmbeddings: false, dtype: 'float16',
    });
    expect(cfg.rope).toMatchObject({ theta: 10000, rotaryDim: 4 });
  });

  it('phi3: metadata as llama.cpp\'s converter writes it for phi3-rand -> its config.json\'s ModelConfig; fused tensor names', () => {
    const ref = parseModelConfig(readFileSync(join(modelDir('phi3-rand'), 'config.json'), 'utf8'));
    const f32 = Math.fround;
    const metadata = new Map<string, GgufValue>([
      ['general.architecture', 'phi3'],
      ['phi3.context_length', 4096], ['phi3.rope.scaling.original_context_length', 4096], ['phi3.embedding_length', 64],
      ['phi3.feed_forward_length', 96], ['phi3.block_count', 2], ['phi3.attention.head_count', 4],
      ['phi3.attention.head_count_kv', 4], ['phi3.attention.layer_norm_rms_epsilon', f32(1e-5)],
      ['phi3.rope.dimension_count', 16], ['phi3.rope.freq_base', 10000], ['phi3.attention.sliding_window', 0],
      ['tokenizer.ggml.tokens', Array.from({ length: 32064 }, (_, i) => `t${i}`)],
      ['tokenizer.ggml.bos_token_id', 1], ['tokenizer.ggml.eos_token_id', 32000],
    ]);
    // GGUF tensors named as the converter names them, shaped as the reference weight table says.
    const ggufName: Record<string, string> = {
      'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight',
      input_layernorm: 'attn_norm', 'self_attn.qkv_proj': 'attn_qkv', 'self_attn.o_proj': 'attn_output',
      post_attention_layernorm: 'ffn_norm', 'mlp.gate_up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
    };
    const specs = weightTable(ref);
    const tensors = specs.map((spec, i) => {
      const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(spec.name);
      const name = m ? `blk.${m[1]}.${ggufName[m[2]]}.weight` : ggufName[spec.name];
      return { name, type: 1, typeName: 'F16', ne: [...spec.shape].reverse(), shape: spec.shape, offset: 1024 * i, byteLength: 0 };
    });
    const header = { version: 3, metadata, tensors, alignment: 32, dataOffset: 0, headerBytes: 0 };
    const ckpt = ggufCheckpoint(header, 'phi3.gguf');
    for (const k of FIELDS) expect([k, ckpt.config[k]]).toEqual([k, k === 'dtype' ? 'float16' : ref[k]]);
    expect(ckpt.config.maxModelLen).toBe(ref.maxModelLen);
    expect(ckpt.unmapped).toEqual([]);
    for (const spec of specs) expect(ckpt.tensors.get(spec.name)?.info.shape, spec.name).toEqual(spec.shape);
    expect([...ckpt.tensors.values()].every((t) => t.rotaryHeads === null)).toBe(true);
    expect(hfTensorName('blk.0.ffn_up.weight', 'phi3')).toBe('model.layers.0.mlp.gate_up_proj.weight');
    expect(hfTensorName('blk.0.ffn_up.weight', 'llama')).toBe('model.layers.0.mlp.up_proj.weight');
  });

  it('missing and unsupported keys are named', async () => {
    const h = await readGgufHeader(memSource(fileBytes('stories260K.gguf')));
    const without = (key: string, value?: unknown) => {
      const metadata = new Map(h.metadata);
      if (value === undefined) metadata.delete(key);
      else metadata.set(key, value as never);
      return () => hfConfigFromGguf({ ...h, metadata }, 'x.gguf');
    };
    expect(without('llama.block_count')).toThrow(/x\.gguf: llama\.block_count is missing/);
    expect(without('general.architecture', 'mamba')).toThrow(/"mamba" is not supported/);
    expect(without('llama.embedding_length', -1)).toThrow(/llama\.embedding_length must be a non-negative integer/);
    expect(without('llama.rope.scaling.type', 'yarn')).toThrow(/rope\.scaling\.type "yarn" is not supported/);
  });
});

describe('GGUF tensors -> HF tensors', () => {
  it('stories260K.gguf as a checkpoint: every tensor in HF row order equals the twin exactly', async () => {
    const bytes = fileBytes('stories260K.gguf');
    const src = memSource(bytes);
    const h = await readGgufHeader(src);
    const ckpt = ggufCheckpoint(h, 'stories260K.gguf');
    const st = await twinTensors('stories260K');
    expect(ggufPermutesQk('llama')).toBe(true);
    expect(ckpt.unmapped).toEqual([]);
    expect(ckpt.tensors.size).toBe(h.tensors.length);
    let permuted = 0;
    for (const t of ckpt.tensors.values()) {
      // The twin ties lm_head to the embeddings: output.weight must equal them.
      const ref = st.get(t.name) ?? (t.name === 'lm_head.weight' ? st.get('model.embed_tokens.weight') : undefined);
      expect(ref, t.name).toBeDefined();
      if (t.rotaryHeads !== null) {
        // Stored rows differ from HF's before the inverse permutation.
        expect(Buffer.compare(await readGgufTensorBytes(src, t.info), ref!)).not.toBe(0);
        expect(t.rotaryHeads).toBe(/q_proj/.test(t.name) ? ckpt.config.numHeads : ckpt.config.numKvHeads);
        permuted++;
      }
      expect(Buffer.compare(await readGgufTensorAsHf(src, t), ref!), t.name).toBe(0);
    }
    expect(permuted).toBe(2 * ckpt.config.numLayers);
  });

  for (const file of ['stories260K.gguf', 'tinystories-656K-q8_0.gguf', 'llama-2-tiny-random.gguf']) {
    it(`${file}: every tensor of the family's weight table is present with its shape`, async () => {
      const ckpt = ggufCheckpoint(await readGgufHeader(memSource(fileBytes(file))), file);
      for (const spec of weightTable(ckpt.config)) {
        const t = ckpt.tensors.get(spec.name);
        if (spec.optional && !t) continue;
        expect(t?.info.shape, spec.name).toEqual(spec.shape);
      }
    });
  }

  it('unpermuteRotaryRows: a worked example and bad sizes', () => {
    // 2 heads of D = 4, one byte per row: GGUF rows [a0 b0 a1 b1 | c0 d0 c1 d1] -> HF [a0 a1 b0 b1 | c0 c1 d0 d1].
    expect([...unpermuteRotaryRows(new Uint8Array([0, 10, 1, 11, 20, 30, 21, 31]), 2, 1)]).toEqual([0, 1, 10, 11, 20, 21, 30, 31]);
    expect(() => unpermuteRotaryRows(new Uint8Array(6), 2, 1)).toThrow(RangeError);
  });

  it('names: layers, globals, biases, q/k norms; unknown ones are null', () => {
    expect(hfTensorName('blk.12.ffn_down.weight')).toBe('model.layers.12.mlp.down_proj.weight');
    expect(hfTensorName('blk.0.attn_q.bias')).toBe('model.layers.0.self_attn.q_proj.bias');
    expect(hfTensorName('blk.1.attn_k_norm.weight')).toBe('model.layers.1.self_attn.k_norm.weight');
    expect(hfTensorName('output_norm.weight')).toBe('model.norm.weight');
    expect(hfTensorName('rope_freqs.weight')).toBeNull();
    expect(hfTensorName('blk.0.ffn_gate_exps.weight')).toBeNull();
  });
});
