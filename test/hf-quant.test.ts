/**
 * loader/hf-quant.ts: AWQ, GPTQ and compressed-tensors checkpoints made here from the formats' specifications
 * (packing written independently of the reader): their repacked blocks against the f32 weights they encode (bit for
 * bit), and LLM.create on tinystories-656K quantized into each layout against a plain f32 checkpoint of the same
 * weights (measured: greedy ids equal, top-20 logprobs within 8.6e-6; desc_act, dense on both sides, 0).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RequestOutput } from '../bindings/node/index.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { goldenRun } from './helpers/golden-checks.js';
import { loadLLM } from './helpers/llm.js';
import { dequantizeRows, formatOfGgmlType } from '../src/layers/quant/index.js';
import type { CheckpointChunk, CheckpointTensor, WeightsReader } from '../src/loader/checkpoint.js';
import { f16BitsToF32, f32BitsToF16Bits } from '../src/loader/convert.js';
import { hasQuantizationConfig, quantizedCheckpointReader } from '../src/loader/hf-quant.js';
import { ModelFileError } from '../src/errors.js';
import { loadGoldens, modelDir } from './helpers/paths.js';

/** A tensor held in memory. */
export interface MemTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** A WeightsReader over tensors in memory, streaming `chunkRows` rows at a time (chunks as the loader gets them). */
export function memoryReader(list: MemTensor[], chunkRows = 3): WeightsReader {
  const tensors = new Map<string, CheckpointTensor>();
  const data = new Map<string, Uint8Array>();
  for (const t of list) {
    tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, file: 'model.safetensors', offset: 0, byteLength: t.data.byteLength });
    data.set(t.name, t.data);
  }
  return {
    files: ['model.safetensors'],
    tensors,
    async *stream(wanted) {
      for (const info of wanted) {
        const bytes = data.get(info.name)!;
        const rows = info.shape.length === 0 ? 1 : info.shape[0];
        const rb = bytes.byteLength / rows;
        for (let r = 0; r < rows; r += chunkRows) {
          const n = Math.min(chunkRows, rows - r);
          yield { info, rowStart: r, rows: n, data: bytes.slice(r * rb, (r + n) * rb) } satisfies CheckpointChunk;
        }
      }
    },
  };
}

/** A seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f16Bits = (v: number) => f32BitsToF16Bits(new Uint32Array(new Float32Array([v]).buffer)[0]);
const bytesOf = (a: Int32Array | Uint16Array | Float32Array | BigInt64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * A weight [out, in] as integers: q [out, in] in 0 .. 2^bits - 1, per group g and output n a zero z [g, n] and an
 * f16 scale s [g, n] (its bits), the group of each input column (contiguous, or scattered by a permutation as
 * act-order), and the f32 weight x = s (q - z) they encode (exact: an f16 times a 9-bit integer).
 */
export interface IntWeight {
  out: number;
  in: number;
  bits: 4 | 8;
  group: number;
  groups: number;
  q: Uint8Array;
  z: Int32Array;
  s: Uint16Array;
  gIdx: Int32Array;
  x: Float32Array;
}

export function intWeight(seed: number, out: number, inCols: number, bits: 4 | 8, group: number, opts: { sym?: boolean; actOrder?: boolean; zMin?: number; bf16?: boolean } = {}): IntWeight {
  const r = rng(seed);
  const max = (1 << bits) - 1;
  const groups = Math.ceil(inCols / group);
  const q = Uint8Array.from({ length: out * inCols }, () => Math.floor(r() * (max + 1)));
  const zMin = opts.zMin ?? 0;
  const z = Int32Array.from({ length: groups * out }, () => (opts.sym ? 1 << (bits - 1) : zMin + Math.floor(r() * (max + 1 - zMin))));
  // (bf16: scales with 8 significant bits, which f16 holds exactly at these magnitudes)
  const bf16 = (v: number) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0] & 0xffff0000]).buffer)[0];
  const s = Uint16Array.from({ length: groups * out }, () => f16Bits((opts.bf16 ? bf16 : Math.fround)((0.002 + 0.05 * r()) * (bits === 8 ? 0.1 : 1))));
  const gIdx = Int32Array.from({ length: inCols }, (_, k) => Math.floor(k / group));
  if (opts.actOrder) {
    // desc_act: columns quantized in a permuted order, group = position in that order / group.
    const perm = Array.from({ length: inCols }, (_, k) => k);
    for (let i = inCols - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    perm.forEach((k, i) => (gIdx[k] = Math.floor(i / group)));
  }
  const x = new Float32Array(out * inCols);
  for (let n = 0; n < out; n++) {
    for (let k = 0; k < inCols; k++) {
      const g = gIdx[k];
      x[n * inCols + k] = f16BitsToF32(s[g * out + n]) * (q[n * inCols + k] - z[g * out + n]);
    }
  }
  return { out, in: inCols, bits, group, groups, q, z, s, gIdx, x };
}

/** [groups, out] f16 scales as AWQ / GPTQ store them (compressed-tensors: transposed, `ct`). */
function scalesTensor(w: IntWeight, name: string, dtype: 'F16' | 'BF16' | 'F32' = 'F16', ct = false): MemTensor {
  const n = w.groups * w.out;
  const v = (i: number) => {
    const [g, o] = ct ? [i % w.groups, Math.floor(i / w.groups)] : [Math.floor(i / w.out), i % w.out];
    return f16BitsToF32(w.s[g * w.out + o]);
  };
  const shape = ct ? [w.out, w.groups] : [w.groups, w.out];
  if (dtype === 'F16') return { name, dtype, shape, data: bytesOf(Uint16Array.from({ length: n }, (_, i) => f16Bits(v(i)))) };
  if (dtype === 'F32') return { name, dtype, shape, data: bytesOf(Float32Array.from({ length: n }, (_, i) => v(i))) };
  const f = Float32Array.from({ length: n }, (_, i) => v(i)); // (the weight's scales must be bf16 values: intWeight's bf16)
  return { name, dtype, shape, data: bytesOf(Uint16Array.from(new Uint32Array(f.buffer), (b) => b >>> 16)) };
}

/** AWQ GEMM: qweight [in, out/8] and qzeros [groups, out/8], nibble i of a word holding column 8 w + ORDER[i]. */
export function packAwq(w: IntWeight, prefix: string): MemTensor[] {
  const ORDER = [0, 2, 4, 6, 1, 3, 5, 7];
  const pack = (rows: number, at: (row: number, col: number) => number) => {
    const a = new Int32Array(rows * (w.out / 8));
    for (let r = 0; r < rows; r++) for (let c = 0; c < w.out / 8; c++) for (let i = 0; i < 8; i++) a[r * (w.out / 8) + c] |= at(r, 8 * c + ORDER[i]) << (4 * i);
    return a;
  };
  return [
    { name: `${prefix}.qweight`, dtype: 'I32', shape: [w.in, w.out / 8], data: bytesOf(pack(w.in, (k, n) => w.q[n * w.in + k])) },
    { name: `${prefix}.qzeros`, dtype: 'I32', shape: [w.groups, w.out / 8], data: bytesOf(pack(w.groups, (g, n) => w.z[g * w.out + n])) },
    scalesTensor(w, `${prefix}.scales`),
  ];
}

/** GPTQ: qweight [in/p, out] (word r: inputs p r + i), qzeros [groups, out/p] holding z - 1 in v1, g_idx. */
export function packGptq(w: IntWeight, prefix: string, v1: boolean): MemTensor[] {
  const p = 32 / w.bits;
  const mask = (1 << w.bits) - 1;
  const qw = new Int32Array((w.in / p) * w.out);
  for (let r = 0; r < w.in / p; r++) for (let n = 0; n < w.out; n++) for (let i = 0; i < p; i++) qw[r * w.out + n] |= w.q[n * w.in + p * r + i] << (w.bits * i);
  const qz = new Int32Array(w.groups * (w.out / p));
  for (let g = 0; g < w.groups; g++) for (let c = 0; c < w.out / p; c++) for (let i = 0; i < p; i++) qz[g * (w.out / p) + c] |= ((w.z[g * w.out + p * c + i] - (v1 ? 1 : 0)) & mask) << (w.bits * i);
  return [
    { name: `${prefix}.qweight`, dtype: 'I32', shape: [w.in / p, w.out], data: bytesOf(qw) },
    { name: `${prefix}.qzeros`, dtype: 'I32', shape: [w.groups, w.out / p], data: bytesOf(qz) },
    scalesTensor(w, `${prefix}.scales`),
    { name: `${prefix}.g_idx`, dtype: 'I32', shape: [w.in], data: bytesOf(w.gIdx.slice()) },
  ];
}

/** compressed-tensors pack-quantized: weight_packed [out, in/p], weight_zero_point [out/p, groups] packed along out. */
export function packCompressed(w: IntWeight, prefix: string, sym: boolean, scaleDtype: 'F16' | 'BF16' | 'F32' = 'F16'): MemTensor[] {
  const p = 32 / w.bits;
  const wp = new Int32Array(w.out * (w.in / p));
  for (let n = 0; n < w.out; n++) for (let c = 0; c < w.in / p; c++) for (let i = 0; i < p; i++) wp[n * (w.in / p) + c] |= w.q[n * w.in + p * c + i] << (w.bits * i);
  const list: MemTensor[] = [
    { name: `${prefix}.weight_packed`, dtype: 'I32', shape: [w.out, w.in / p], data: bytesOf(wp) },
    scalesTensor(w, `${prefix}.weight_scale`, scaleDtype, true),
    { name: `${prefix}.weight_shape`, dtype: 'I64', shape: [2], data: bytesOf(BigInt64Array.from([BigInt(w.out), BigInt(w.in)])) },
  ];
  if (!sym) {
    const zp = new Int32Array(Math.ceil(w.out / p) * w.groups);
    for (let n = 0; n < w.out; n++) for (let g = 0; g < w.groups; g++) zp[Math.floor(n / p) * w.groups + g] |= w.z[g * w.out + n] << (w.bits * (n % p));
    list.push({ name: `${prefix}.weight_zero_point`, dtype: 'I32', shape: [Math.ceil(w.out / p), w.groups], data: bytesOf(zp) });
  }
  return list;
}

/** Every chunk of one tensor of a reader, reassembled. */
async function readWhole(reader: WeightsReader, name: string): Promise<{ info: CheckpointTensor; data: Uint8Array; chunks: number }> {
  const info = reader.tensors.get(name)!;
  const data = new Uint8Array(info.byteLength);
  let chunks = 0;
  const rowBytes = info.byteLength / info.shape[0];
  for await (const c of reader.stream([info])) {
    expect(c.info).toBe(info);
    data.set(c.data, c.rowStart * rowBytes);
    chunks++;
  }
  return { info, data, chunks };
}

/** The f32 weight a presented tensor holds: its blocks dequantized, or its f16 values. */
function weightOf(info: CheckpointTensor, data: Uint8Array): Float32Array {
  const [rows, cols] = info.shape;
  if (info.dtype === 'F16') return Float32Array.from(new Uint16Array(data.buffer, data.byteOffset, rows * cols), f16BitsToF32);
  return dequantizeRows(formatOfGgmlType(info.dtype)!, data, rows, cols);
}

const f16Round = (x: Float32Array) => Float32Array.from(x, (v) => f16BitsToF32(f16Bits(v)));

const AWQ = { quant_method: 'awq', bits: 4, group_size: 64, zero_point: true, version: 'gemm' };
const gptq = (bits: number, sym: boolean, desc_act = false, extra = {}) => ({ quant_method: 'gptq', bits, group_size: 64, sym, desc_act, ...extra });
const ct = (bits: number, symmetric: boolean, extra: Record<string, unknown> = {}) => ({
  quant_method: 'compressed-tensors',
  format: 'pack-quantized',
  config_groups: { group_0: { targets: ['Linear'], weights: { num_bits: bits, type: 'int', symmetric, strategy: 'group', group_size: 64, dynamic: false, actorder: null, ...extra }, input_activations: null, output_activations: null } },
  ignore: ['lm_head'],
  quantization_status: 'compressed',
});

describe('hf-quant: repacked blocks equal the weights the checkpoint encodes', () => {
  const P = 'model.layers.0.mlp.down_proj';
  // [name, config, the checkpoint's tensors for w, w, the dtype presented, exact (else the f16 rounding of x)]
  const cases: [string, unknown, IntWeight, (w: IntWeight) => MemTensor[], string][] = [
    ['awq g64', AWQ, intWeight(1, 40, 192, 4, 64), (w) => packAwq(w, P), 'Q4_ZP'],
    ['awq g128, in not a multiple of the group (a short last group)', { ...AWQ, group_size: 128 }, intWeight(2, 16, 160, 4, 128), (w) => packAwq(w, P), 'Q4_ZP'],
    ['gptq 4-bit sym (v1 zeros 7)', gptq(4, true), intWeight(3, 24, 128, 4, 64, { sym: true }), (w) => packGptq(w, P, true), 'Q4_0'],
    ['gptq 4-bit sym v2', gptq(4, true, false, { checkpoint_format: 'gptq_v2' }), intWeight(4, 24, 128, 4, 64, { sym: true }), (w) => packGptq(w, P, false), 'Q4_0'],
    ['gptq 4-bit asym (v1: z 1 .. 15 stored minus one)', gptq(4, false), intWeight(5, 24, 128, 4, 64, { zMin: 1 }), (w) => packGptq(w, P, true), 'Q4_ZP'],
    ['gptq 4-bit asym v2', gptq(4, false, false, { checkpoint_format: 'gptq_v2' }), intWeight(6, 24, 128, 4, 64), (w) => packGptq(w, P, false), 'Q4_ZP'],
    ['gptq 8-bit sym', gptq(8, true), intWeight(7, 24, 128, 8, 64, { sym: true }), (w) => packGptq(w, P, true), 'Q8_0'],
    ['gptq 8-bit asym', gptq(8, false), intWeight(8, 24, 128, 8, 64, { zMin: 1 }), (w) => packGptq(w, P, true), 'Q8_ZP'],
    ['gptq group_size -1 (one group a row)', { ...gptq(4, false), group_size: -1 }, intWeight(9, 16, 96, 4, 96, { zMin: 1 }), (w) => packGptq(w, P, true), 'Q4_ZP'],
    ['gptq desc_act (g_idx scatters groups): dense f16', gptq(4, true, true), intWeight(10, 24, 128, 4, 64, { sym: true, actOrder: true }), (w) => packGptq(w, P, true), 'F16'],
    ['gptq group 16 (chunks span groups): dense f16', { ...gptq(4, false), group_size: 16 }, intWeight(11, 16, 64, 4, 16, { zMin: 1 }), (w) => packGptq(w, P, true), 'F16'],
    ['compressed-tensors W4A16 symmetric', ct(4, true), intWeight(12, 40, 128, 4, 64, { sym: true }), (w) => packCompressed(w, P, true), 'Q4_0'],
    ['compressed-tensors W4A16 symmetric, bf16 scales', ct(4, true), intWeight(13, 40, 128, 4, 64, { sym: true, bf16: true }), (w) => packCompressed(w, P, true, 'BF16'), 'Q4_0'],
    ['compressed-tensors W4A16 asymmetric (packed zero points)', ct(4, false), intWeight(14, 36, 128, 4, 64), (w) => packCompressed(w, P, false), 'Q4_ZP'],
    ['compressed-tensors W8A16 symmetric, f32 scales', ct(8, true), intWeight(15, 24, 128, 8, 64, { sym: true }), (w) => packCompressed(w, P, true, 'F32'), 'Q8_0'],
    ['compressed-tensors W8A16 asymmetric', ct(8, false), intWeight(16, 24, 128, 8, 64), (w) => packCompressed(w, P, false), 'Q8_ZP'],
    ['compressed-tensors channel strategy', ct(4, true, { strategy: 'channel', group_size: null }), intWeight(17, 16, 128, 4, 128, { sym: true }), (w) => packCompressed(w, P, true), 'Q4_0'],
    ['compressed-tensors actorder group: dense f16', ct(4, true, { actorder: 'group' }), intWeight(18, 16, 128, 4, 64, { sym: true, actOrder: true }), (w) => [...packCompressed(w, P, true), { name: `${P}.weight_g_idx`, dtype: 'I32', shape: [w.in], data: bytesOf(w.gIdx.slice()) }], 'F16'],
  ];
  for (const [name, config, w, pack, dtype] of cases) {
    it(`${name}: ${dtype}`, async () => {
      const bias: MemTensor = { name: `${P}.bias`, dtype: 'F32', shape: [w.out], data: bytesOf(Float32Array.from({ length: w.out }, (_, i) => i)) };
      const norm: MemTensor = { name: 'model.norm.weight', dtype: 'F32', shape: [8], data: bytesOf(new Float32Array(8).fill(1)) };
      const reader = quantizedCheckpointReader(memoryReader([norm, ...pack(w), bias]), config, 'config.json');
      expect([...reader.tensors.keys()]).toEqual(['model.norm.weight', `${P}.weight`, `${P}.bias`]);
      const { info, data, chunks } = await readWhole(reader, `${P}.weight`);
      expect([info.dtype, info.shape]).toEqual([dtype, [w.out, w.in]]);
      expect(chunks).toBe(1);
      const got = weightOf(info, data);
      // Exact: the blocks dequantize to x bit for bit; dense: x rounded once to f16.
      expect(got).toEqual(dtype === 'F16' ? f16Round(w.x) : w.x);
      // Pass-through tensors come as the inner reader gives them, in the order asked.
      const order: string[] = [];
      for await (const c of reader.stream([reader.tensors.get(`${P}.bias`)!, info, reader.tensors.get('model.norm.weight')!])) order.push(`${c.info.name}@${c.rowStart}`);
      const rows = (name: string, n: number) => Array.from({ length: Math.ceil(n / 3) }, (_, i) => `${name}@${3 * i}`);
      expect(order).toEqual([...rows(`${P}.bias`, w.out), `${P}.weight@0`, ...rows('model.norm.weight', 8)]);
    });
  }

  it('large modules come in chunks of whole rows', async () => {
    const w = intWeight(20, 40, 256, 4, 64);
    const reader = quantizedCheckpointReader(memoryReader(packAwq(w, P)), AWQ, 'config.json', { maxChunkBytes: 17 * 160 });
    const { info, data, chunks } = await readWhole(reader, `${P}.weight`);
    expect(chunks).toBe(3); // rows of 8 blocks of 20 bytes, 16 a chunk (whole tiles of 8)
    expect(weightOf(info, data)).toEqual(w.x);
  });

  it('hasQuantizationConfig', () => {
    expect(hasQuantizationConfig({ quantization_config: AWQ })).toBe(true);
    expect(hasQuantizationConfig({ quantization_config: null })).toBe(false);
    expect(hasQuantizationConfig({ hidden_size: 8 })).toBe(false);
  });
});

describe('hf-quant: unsupported configurations and inconsistent files', () => {
  const P = 'model.layers.0.self_attn.q_proj';
  const w4 = intWeight(30, 16, 128, 4, 64, { sym: true });
  const make = (config: unknown, tensors: MemTensor[] = packGptq(w4, P, true)) => quantizedCheckpointReader(memoryReader(tensors), config, 'config.json');
  const rejects = (config: unknown, re: RegExp, tensors?: MemTensor[]) => {
    let err: unknown;
    try {
      make(config, tensors);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toMatch(re);
  };

  it('names the field of a configuration it cannot load', () => {
    rejects({ ...gptq(4, true), bits: 3 }, /config\.json: quantization_config\.bits: 3 is not supported \(GPTQ: 4 or 8\)/);
    rejects({ quant_method: 'bitsandbytes' }, /quantization_config\.quant_method: "bitsandbytes" is not supported \(supported: awq, gptq, compressed-tensors\)/);
    rejects({ ...AWQ, version: 'gemv' }, /quantization_config\.version: "gemv" is not supported/);
    rejects({ ...AWQ, zero_point: false }, /quantization_config\.zero_point/);
    rejects({ ...gptq(4, true), checkpoint_format: 'marlin' }, /quantization_config\.checkpoint_format: "marlin"/);
    rejects({ ...gptq(4, true), group_size: 0 }, /quantization_config\.group_size: 0/);
    rejects({ ...ct(4, true), format: 'int-quantized' }, /quantization_config\.format: "int-quantized"/);
    const w8a8 = ct(8, true);
    (w8a8.config_groups.group_0 as Record<string, unknown>).input_activations = { num_bits: 8, type: 'int' };
    rejects(w8a8, /quantization_config\.config_groups\.group_0\.input_activations: activation quantization is not supported/);
    rejects(ct(4, true, { type: 'float' }), /config_groups\.group_0\.weights\.type: "float"/);
    rejects(ct(4, true, { strategy: 'tensor' }), /weights\.strategy: "tensor"/);
    rejects(null, /quantization_config: must be an object/);
  });

  it('checks shapes against each other and the config before reading anything', () => {
    const t = packGptq(w4, P, true);
    rejects({ ...gptq(4, true), group_size: 32 }, /q_proj\.scales: shape \[2,16\] \(expected \[4,16\]/, t);
    rejects(gptq(4, true), /has no model\.layers\.0\.self_attn\.q_proj\.qzeros/, t.filter((x) => !x.name.endsWith('qzeros')));
    rejects(gptq(4, true), /qweight: must be a non-empty 2-D I32 tensor, got F32/, t.map((x) => (x.name.endsWith('qweight') ? { ...x, dtype: 'F32' } : x)));
    rejects(gptq(4, true), /holds both model\.layers\.0\.self_attn\.q_proj\.weight/, [...t, { name: `${P}.weight`, dtype: 'F32', shape: [1], data: new Uint8Array(4) }]);
    rejects(ct(4, true), /no group of config\.json's quantization_config\.config_groups fits/, packCompressed(w4, P, false));
  });

  it('refuses contents that contradict the config while streaming', async () => {
    const drain = async (r: WeightsReader) => {
      for await (const _ of r.stream(r.tensors.values()));
    };
    // sym: true, but a zero point other than 8.
    const odd = intWeight(31, 16, 128, 4, 64, { zMin: 1 });
    await expect(drain(make(gptq(4, true), packGptq(odd, P, true)))).rejects.toThrow(/qzeros: symmetric, but group \d of output 0 has zero point \d+ \(expected 8\)/);
    // g_idx not contiguous without desc_act; g_idx out of range with it.
    const scattered = intWeight(32, 16, 128, 4, 64, { sym: true, actOrder: true });
    await expect(drain(make(gptq(4, true), packGptq(scattered, P, true)))).rejects.toThrow(/g_idx\[\d+\] = 1, but without act-order column \d+ is in group 0/);
    const bad = packGptq(scattered, P, true).map((x) => (x.name.endsWith('g_idx') ? { ...x, data: bytesOf(new Int32Array(128).fill(7)) } : x));
    await expect(drain(make(gptq(4, true, true), bad))).rejects.toThrow(/g_idx\[0\] = 7 is not a group \(0 \.\. 1\)/);
    // weight_shape disagreeing with the packed tensor; a scale f16 cannot hold.
    const shapeBad = packCompressed(w4, P, true).map((x) => (x.name.endsWith('weight_shape') ? { ...x, data: bytesOf(BigInt64Array.from([16n, 120n])) } : x));
    await expect(drain(make(ct(4, true), shapeBad))).rejects.toThrow(/weight_shape: \[16,120\] but .* packs \[16, 128\]/);
    const huge = packCompressed(w4, P, true, 'F32').map((x) => (x.name.endsWith('weight_scale') ? { ...x, data: bytesOf(new Float32Array(32).fill(1e6)) } : x));
    await expect(drain(make(ct(4, true), huge))).rejects.toThrow(/weight_scale: scale 1000000 \(element 0\) does not fit in f16/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Whole checkpoints: tinystories-656K's projections quantized (round to nearest, per group) into each layout, beside
// a plain f32 checkpoint of the weights they encode.

/** Round-to-nearest quantization of x [out, in] per group: asymmetric (AWQ-style min / max) or symmetric (z = 2^(b-1)). */
export function quantizeRtn(x: Float32Array, out: number, inCols: number, bits: 4 | 8, group: number, sym: boolean, actOrderSeed?: number): IntWeight {
  const w = intWeight(actOrderSeed ?? 0, out, inCols, bits, group, { sym, actOrder: actOrderSeed !== undefined });
  const max = (1 << bits) - 1;
  for (let n = 0; n < out; n++) {
    for (let g = 0; g < w.groups; g++) {
      const cols = [...w.gIdx.keys()].filter((k) => w.gIdx[k] === g);
      const v = cols.map((k) => x[n * inCols + k]);
      const lo = Math.min(0, ...v);
      const hi = Math.max(0, ...v);
      const scale = sym ? Math.max(hi, -lo) / (max >> 1) : (hi - lo) / max;
      const h = f16Bits(scale || 1e-4);
      const s = f16BitsToF32(h);
      const z = sym ? 1 << (bits - 1) : Math.min(max, Math.max(0, Math.round(-lo / s)));
      w.s[g * out + n] = h;
      w.z[g * out + n] = z;
      for (const k of cols) {
        const q = Math.min(max, Math.max(0, Math.round(x[n * inCols + k] / s) + z));
        w.q[n * inCols + k] = q;
        w.x[n * inCols + k] = s * (q - z);
      }
    }
  }
  return w;
}

interface StTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

function readSafetensors(path: string): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') metadata = t as unknown as Record<string, string>;
    else tensors.set(name, { dtype: t.dtype, shape: t.shape, data: new Uint8Array(b.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1])) });
  }
  return { tensors, metadata };
}

function writeSafetensors(path: string, tensors: Iterable<MemTensor>, metadata: Record<string, string>): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const datas: Uint8Array[] = [];
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    datas.push(t.data);
    at += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...datas]));
}

type Method = 'awq' | 'gptq' | 'gptq-desc-act' | 'ct-w8a16-asym';

/**
 * Two folders from a float checkpoint: `quantized` (config.json with quantization_config, the projections packed as
 * `method` lays them out) and `reference` (the weights they encode, f32; act-order ones rounded to f16 as the reader
 * presents them). Other files are linked.
 */
export function buildQuantizedPair(src: string, method: Method): { quantized: string; reference: string; dispose: () => void } {
  const root = mkdtempSync(join(tmpdir(), `hf-quant-${method}-`));
  const quantized = join(root, 'quantized');
  const reference = join(root, 'reference');
  mkdirSync(quantized);
  mkdirSync(reference);
  const { tensors, metadata } = readSafetensors(join(src, 'model.safetensors'));
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  const qc = {
    awq: { ...AWQ, group_size: 64 },
    gptq: { ...gptq(4, true), group_size: 32 },
    'gptq-desc-act': { ...gptq(4, false), group_size: 32, desc_act: true, checkpoint_format: 'gptq_v2' },
    'ct-w8a16-asym': ct(8, false),
  }[method];
  const packedList: MemTensor[] = [];
  const refList: MemTensor[] = [];
  let seed = 100;
  for (const [name, t] of tensors) {
    const m = /^(model\.layers\.\d+\.[a-z_]+\.[a-z_]+_proj)\.weight$/.exec(name);
    if (!m) {
      packedList.push({ name, ...t });
      refList.push({ name, ...t });
      continue;
    }
    const [out, inCols] = t.shape;
    const x = new Float32Array(t.data.buffer, t.data.byteOffset, out * inCols);
    const w =
      method === 'awq' ? quantizeRtn(x, out, inCols, 4, 64, false)
      : method === 'gptq' ? quantizeRtn(x, out, inCols, 4, 32, true)
      : method === 'gptq-desc-act' ? quantizeRtn(x, out, inCols, 4, 32, false, seed++)
      : quantizeRtn(x, out, inCols, 8, 64, false);
    const prefix = m[1];
    packedList.push(
      ...(method === 'awq' ? packAwq(w, prefix) : method === 'ct-w8a16-asym' ? packCompressed(w, prefix, false) : packGptq(w, prefix, method === 'gptq')),
    );
    if (method === 'gptq-desc-act') w.x = f16Round(w.x);
    refList.push({ name, dtype: 'F32', shape: [out, inCols], data: bytesOf(w.x) });
  }
  writeSafetensors(join(quantized, 'model.safetensors'), packedList, metadata);
  writeSafetensors(join(reference, 'model.safetensors'), refList, metadata);
  writeFileSync(join(quantized, 'config.json'), JSON.stringify({ ...config, quantization_config: qc }, null, 1));
  writeFileSync(join(reference, 'config.json'), JSON.stringify(config, null, 1));
  for (const f of readdirSync(src)) {
    if (f === 'model.safetensors' || f === 'config.json') continue;
    symlinkSync(join(src, f), join(quantized, f));
    symlinkSync(join(src, f), join(reference, f));
  }
  return { quantized, reference, dispose: () => rmSync(root, { recursive: true }) };
}

describe('hf-quant: tinystories-656K quantized into each layout', () => {
  for (const method of ['awq', 'gptq', 'gptq-desc-act', 'ct-w8a16-asym'] as const) {
    it(`${method}: every projection repacks to the reference checkpoint's weight`, async () => {
      const pair = buildQuantizedPair(modelDir('tinystories-656K'), method);
      try {
        const config = JSON.parse(readFileSync(join(pair.quantized, 'config.json'), 'utf8')) as Record<string, unknown>;
        expect(hasQuantizationConfig(config)).toBe(true);
        const packed = readSafetensors(join(pair.quantized, 'model.safetensors')).tensors;
        const ref = readSafetensors(join(pair.reference, 'model.safetensors')).tensors;
        const reader = quantizedCheckpointReader(memoryReader([...packed].map(([name, t]) => ({ name, ...t })), 64), config.quantization_config, 'config.json');
        expect([...reader.tensors.keys()].sort()).toEqual([...ref.keys()].sort());
        const dtypes = new Set<string>();
        for (const [name, info] of reader.tensors) {
          const r = ref.get(name)!;
          expect(info.shape).toEqual(r.shape);
          const { data } = await readWhole(reader, name);
          // Bit for bit (Buffer.equals: toEqual on a megabyte of typed array is slow).
          if (info.dtype === 'F32') {
            expect(Buffer.from(data).equals(r.data)).toBe(true);
            continue;
          }
          dtypes.add(info.dtype);
          expect(Buffer.from(bytesOf(weightOf(info, data))).equals(r.data)).toBe(true);
        }
        expect([...dtypes]).toEqual([{ awq: 'Q4_ZP', gptq: 'Q4_0', 'gptq-desc-act': 'F16', 'ct-w8a16-asym': 'Q8_ZP' }[method]]);
      } finally {
        pair.dispose();
      }
    });
  }
});

describe('LLM.create on quantized checkpoints: the same outputs as the weights they encode in f32', () => {
  const byRank = (out: RequestOutput) =>
    [...out.outputs[0].logprobs![0].values()].filter((l) => l.rank <= 20).sort((a, b) => a.rank - b.rank).map((l) => l.logprob);
  const measured: Record<string, unknown> = {};
  afterAll(() => console.log('hf-quant measurements', JSON.stringify(measured)));

  for (const method of ['awq', 'gptq', 'gptq-desc-act', 'ct-w8a16-asym'] as const) {
    it(`tinystories-656K ${method}: greedy ids equal, top-20 logprobs within 1e-4`, async () => {
      const pair = buildQuantizedPair(modelDir('tinystories-656K'), method);
      try {
        const g = loadGoldens()['tinystories-656K'];
        const ref = await loadLLM(pair.reference);
        const refOuts = await goldenRun(ref, g.prompts);
        await ref.dispose();
        const llm = await loadLLM(pair.quantized);
        const outs = await goldenRun(llm, g.prompts);
        // The projections keep the reader's format on the GPU (desc_act: dense).
        const layer = gpuRunnerOf(llm.engine).model.weights.layers[0] as unknown as Record<string, { method: { name: string } }>;
        const want = { awq: 'q4_zp', gptq: 'q4_0', 'gptq-desc-act': 'f32', 'ct-w8a16-asym': 'q8_zp' }[method];
        const names = Object.values(layer).filter((w) => w && typeof w === 'object' && 'method' in w).map((w) => w.method.name);
        expect(names.length).toBeGreaterThan(0);
        for (const n of names) expect(n).toBe(want);
        await llm.dispose();
        let err = 0;
        g.prompts.forEach((_, i) => {
          const a = byRank(outs[i]);
          byRank(refOuts[i]).forEach((l, r) => (err = Math.max(err, Math.abs(l - a[r]))));
          expect(outs[i].outputs[0].tokenIds).toEqual(refOuts[i].outputs[0].tokenIds);
        });
        // For scale: how far round-to-nearest quantization itself moves the logprobs from the f32 goldens.
        let fromF32 = 0;
        g.prompts.forEach((p, i) => byRank(outs[i]).forEach((l, r) => (fromF32 = Math.max(fromF32, Math.abs(l - p.last_logprobs_top20[r])))));
        measured[method] = { maxLogprobErr: err, vsF32Goldens: fromF32 };
        expect(err).toBeLessThan(1e-4);
      } finally {
        pair.dispose();
      }
    });
  }

  it('an unsupported quantization_config fails the load naming the field', async () => {
    const pair = buildQuantizedPair(modelDir('tinystories-656K'), 'gptq');
    try {
      const path = join(pair.quantized, 'config.json');
      const config = JSON.parse(readFileSync(path, 'utf8')) as { quantization_config: Record<string, unknown> };
      writeFileSync(path, JSON.stringify({ ...config, quantization_config: { ...config.quantization_config, bits: 3 } }));
      await expect(loadLLM(pair.quantized)).rejects.toThrow(/config\.json: quantization_config\.bits: 3 is not supported \(GPTQ: 4 or 8\)/);
    } finally {
      pair.dispose();
    }
  });
});
