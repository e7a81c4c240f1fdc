/**
 * Hugging Face quantized checkpoints (config.json `quantization_config`) as a WeightsReader: each quantized module's
 * packed tensors are repacked on the CPU, one module at a time, into rows of llama.cpp-style blocks
 * (layers/quant/formats/) and presented as `<module>.weight` [out, in] with a block dtype; every other tensor passes
 * through. Three layouts, all x = s (q - z) per group of `group` input columns (s: the group's scale, z: its zero;
 * b bits, p = 32 / b values a little-endian int32, value i at bits b i):
 * - awq (GEMM): qweight I32 [in, out/8], word (k, w) holding columns 8 w + AWQ's order [0, 2, 4, 6, 1, 3, 5, 7][i]
 *   of input k; qzeros I32 [groups, out/8] the same way; scales [groups, out].
 * - gptq: qweight I32 [in/p, out], word (r, n) holding inputs p r + i of column n; qzeros I32 [groups, out/p], word
 *   (g, c) holding columns p c + i, minus one in v1 checkpoints (checkpoint_format 'gptq', the default: z = stored
 *   + 1, 1 .. 2^b, as the CUDA kernels read it) and as is in 'gptq_v2'; scales [groups, out]; g_idx I32 [in] (the
 *   group of each input column).
 * - compressed-tensors (format pack-quantized): weight_packed I32 [out, in/p], word (n, c) holding inputs p c + i,
 *   stored q + 2^(b-1); weight_zero_point I32 [out/p, groups] packed along out (absent when symmetric: z = 2^(b-1));
 *   weight_scale [out, groups]; weight_shape [2] = [out, in]; weight_g_idx with actorder 'group'.
 *
 * The block format (exact wherever a 32-column chunk lies in one group, i.e. group a multiple of 32, and the scales
 * are f16 values):
 * - symmetric (z = 2^(b-1): GPTQ sym, compressed-tensors symmetric): 4 bits -> q4_0 (d (q - 8)), 8 bits -> q8_0
 *   (d (q - 128) as int8);
 * - with zero points (AWQ, GPTQ sym: false, compressed-tensors symmetric: false): q4_zp / q8_zp (formats/hf.ts:
 *   d (q - z) with an integer z; q4_1's f16 minimum would round -z s);
 * - act-order (GPTQ desc_act, compressed-tensors actorder 'group': g_idx scatters each group's columns, so a chunk
 *   of 32 columns mixes scales), groups not a multiple of 32, or rows not whole chunks: no block format can hold the
 *   weight exactly, so it is dequantized and presented as F16 (s (q - z) rounded once to f16: what the CUDA kernels
 *   compute in half precision; 4x the bytes of a 4-bit format, but no second quantization error as q8_0 would add).
 * Scales in BF16 / F32 are rounded to f16 for the block's d (exact for bf16 scales above 2^-17); a scale beyond
 * f16's range is refused.
 *
 * Hostile files: every packed tensor's dtype and shape is checked against the others and the config (bits, group)
 * when the reader is made, before anything is read; host memory holds one module's packed tensors plus one output
 * chunk (CHUNK_BYTES), and work is linear in the module's elements.
 */
import { ModelFileError } from '../errors.js';
import { f16BitsToF32, f32BitsToF16Bits } from './convert.js';
import type { CheckpointChunk, CheckpointTensor, WeightsReader } from './checkpoint.js';

/** Bytes of repacked rows per chunk handed on, by default. */
const CHUNK_BYTES = 16 * 1024 * 1024;

export interface HfQuantOptions {
  /** Bytes of repacked rows per chunk (default 16 MiB; at least 8 rows). */
  maxChunkBytes?: number;
}
/** AWQ's packing order inverted: nibble i holds column [0, 2, 4, 6, 1, 3, 5, 7][i] of its 8, so column j sits in nibble AWQ_NIBBLE[j]. */
const AWQ_NIBBLE = [0, 4, 1, 5, 2, 6, 3, 7];

type Layout = 'awq' | 'gptq' | 'compressed-tensors';
/** The dtype a module is presented in: a block type (formats/legacy.ts, formats/hf.ts) or dense f16. */
type OutDtype = 'Q4_0' | 'Q8_0' | 'Q4_ZP' | 'Q8_ZP' | 'F16';
const BLOCK_BYTES: Record<OutDtype, number> = { Q4_0: 18, Q8_0: 34, Q4_ZP: 20, Q8_ZP: 36, F16: 64 };

/** Weight quantization arguments of a config (compressed-tensors may have several groups). */
interface Scheme {
  bits: 4 | 8;
  /** Input columns per group; -1: the whole row. */
  group: number;
  sym: boolean;
  /** g_idx scatters groups (desc_act / actorder 'group'). */
  actOrder: boolean;
  /** GPTQ v1: qzeros hold z - 1. */
  zeroMinusOne: boolean;
}

/** A quantized module: its packed tensors and what it is presented as. */
interface QuantModule {
  layout: Layout;
  scheme: Scheme;
  out: number;
  in: number;
  /** Input columns per group (in for one group), groups = ceil(in / group). */
  group: number;
  groups: number;
  qweight: CheckpointTensor;
  scales: CheckpointTensor;
  zeros?: CheckpointTensor;
  gIdx?: CheckpointTensor;
  /** compressed-tensors' weight_shape: [out, in]. */
  shape?: CheckpointTensor;
  dtype: OutDtype;
  presented: CheckpointTensor;
}

/** Whether config.json declares a quantized checkpoint. */
export function hasQuantizationConfig(config: Record<string, unknown>): boolean {
  return config.quantization_config !== undefined && config.quantization_config !== null;
}

/**
 * The checkpoint `inner` with its quantized modules repacked (see the header): `<module>.weight` [out, in] in a block
 * dtype ('Q4_0', 'Q8_0', 'Q4_ZP', 'Q8_ZP') or 'F16'; the packed tensors themselves are not listed. Throws a
 * ModelFileError naming the field for configurations it cannot load (bits 3, an unknown quant_method, AWQ's GEMV
 * layout, activation quantization), and naming the tensor for shapes that disagree with the config.
 *
 * @example
 *   const cfg = JSON.parse(await model.readText('config.json'));
 *   if (hasQuantizationConfig(cfg)) reader = quantizedCheckpointReader(reader, cfg.quantization_config, 'config.json');
 *   reader.tensors.get('model.layers.0.mlp.down_proj.weight'); // { dtype: 'Q4_ZP', shape: [2048, 5632], ... }
 */
export function quantizedCheckpointReader(inner: WeightsReader, quantConfig: unknown, where: string, opts: HfQuantOptions = {}): WeightsReader {
  const chunkBytes = opts.maxChunkBytes ?? CHUNK_BYTES;
  const { layout, schemes } = readQuantConfig(quantConfig, where);
  const modules = new Map<string, QuantModule>();
  const hidden = new Set<string>();
  const suffix = layout === 'compressed-tensors' ? '.weight_packed' : '.qweight';
  for (const t of inner.tensors.values()) {
    if (!t.name.endsWith(suffix)) continue;
    const m = describeModule(inner, layout, schemes, t.name.slice(0, -suffix.length), where);
    if (inner.tensors.has(m.presented.name)) throw new ModelFileError(t.file, `holds both ${m.presented.name} and ${t.name}`);
    modules.set(m.presented.name, m);
    for (const c of components(m)) hidden.add(c.name);
  }
  // In the inner order, each module where its packed weight was.
  const tensors = new Map<string, CheckpointTensor>();
  for (const t of inner.tensors.values()) {
    const m = t.name.endsWith(suffix) ? modules.get(`${t.name.slice(0, -suffix.length)}.weight`) : undefined;
    if (m) tensors.set(m.presented.name, m.presented);
    else if (!hidden.has(t.name)) tensors.set(t.name, t);
  }
  return {
    files: inner.files,
    tensors,
    stream: (wanted) => streamRepacked(inner, modules, wanted, chunkBytes),
  };
}

/** The packed tensors of a module, in the order they are streamed. */
const components = (m: QuantModule): CheckpointTensor[] =>
  [m.qweight, m.scales, m.zeros, m.gIdx, m.shape].filter((t): t is CheckpointTensor => t !== undefined);

// ---------------------------------------------------------------------------------------------------------------
// The config

function readQuantConfig(qc: unknown, where: string): { layout: Layout; schemes: Scheme[] } {
  const fail = (field: string, problem: string): never => {
    throw new ModelFileError(where, `quantization_config${field ? `.${field}` : ''}: ${problem}`);
  };
  if (typeof qc !== 'object' || qc === null || Array.isArray(qc)) fail('', 'must be an object');
  const c = qc as Record<string, unknown>;
  const method = c.quant_method;
  const int = (v: unknown, field: string, allowed: (n: number) => boolean, what: string): number => {
    if (!Number.isSafeInteger(v) || !allowed(v as number)) fail(field, `${JSON.stringify(v)} is not supported (${what})`);
    return v as number;
  };
  const bool = (v: unknown, field: string, dflt: boolean): boolean => {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const groupOk = (n: number) => n === -1 || (n > 0 && n <= 1 << 20);
  if (method === 'awq') {
    const bitsField = c.bits !== undefined ? 'bits' : 'w_bit';
    const bits = int(c[bitsField], bitsField, (n) => n === 4, 'AWQ: 4');
    const groupField = c.group_size !== undefined ? 'group_size' : 'q_group_size';
    const group = int(c[groupField], groupField, groupOk, 'a positive group size, or -1');
    if (!bool(c.zero_point, 'zero_point', true)) fail('zero_point', 'false is not supported (AWQ without zero points)');
    const version = c.version ?? 'gemm';
    if (typeof version !== 'string' || version.toLowerCase() !== 'gemm') fail('version', `${JSON.stringify(version)} is not supported (the GEMM layout only)`);
    return { layout: 'awq', schemes: [{ bits: bits as 4, group, sym: false, actOrder: false, zeroMinusOne: false }] };
  }
  if (method === 'gptq') {
    const bits = int(c.bits, 'bits', (n) => n === 4 || n === 8, 'GPTQ: 4 or 8');
    const group = int(c.group_size ?? -1, 'group_size', groupOk, 'a positive group size, or -1');
    const formatField = c.checkpoint_format !== undefined ? 'checkpoint_format' : 'format';
    const format = c[formatField] ?? 'gptq';
    if (format !== 'gptq' && format !== 'gptq_v2') fail(formatField, `${JSON.stringify(format)} is not supported (gptq, gptq_v2)`);
    if (bool(c.is_marlin_format, 'is_marlin_format', false)) fail('is_marlin_format', 'the Marlin layout is not supported');
    const scheme: Scheme = { bits: bits as 4 | 8, group, sym: bool(c.sym, 'sym', true), actOrder: bool(c.desc_act, 'desc_act', false), zeroMinusOne: format === 'gptq' };
    return { layout: 'gptq', schemes: [scheme] };
  }
  if (method === 'compressed-tensors') {
    if (c.format !== 'pack-quantized') fail('format', `${JSON.stringify(c.format)} is not supported (pack-quantized)`);
    for (const f of ['sparsity_config', 'kv_cache_scheme', 'transform_config']) {
      const v = c[f];
      if (v !== undefined && v !== null && !(typeof v === 'object' && Object.keys(v as object).length === 0)) fail(f, 'is not supported');
    }
    const groups = c.config_groups;
    if (typeof groups !== 'object' || groups === null || Array.isArray(groups) || Object.keys(groups).length === 0) fail('config_groups', 'must be a non-empty object');
    const schemes = Object.entries(groups as Record<string, unknown>).map(([name, g]): Scheme => {
      const at = `config_groups.${name}`;
      if (typeof g !== 'object' || g === null) fail(at, 'must be an object');
      const gr = g as Record<string, unknown>;
      if (gr.format !== undefined && gr.format !== null && gr.format !== 'pack-quantized') fail(`${at}.format`, `${JSON.stringify(gr.format)} is not supported (pack-quantized)`);
      for (const f of ['input_activations', 'output_activations']) if (gr[f] !== undefined && gr[f] !== null) fail(`${at}.${f}`, 'activation quantization is not supported (weight-only W4A16 / W8A16)');
      const w = gr.weights;
      if (typeof w !== 'object' || w === null) fail(`${at}.weights`, 'must be an object');
      const wa = w as Record<string, unknown>;
      const bits = int(wa.num_bits, `${at}.weights.num_bits`, (n) => n === 4 || n === 8, '4 or 8');
      if (wa.type !== 'int') fail(`${at}.weights.type`, `${JSON.stringify(wa.type)} is not supported (int)`);
      if (bool(wa.dynamic, `${at}.weights.dynamic`, false)) fail(`${at}.weights.dynamic`, 'true is not supported');
      const strategy = wa.strategy;
      let group = -1;
      if (strategy === 'group') group = int(wa.group_size, `${at}.weights.group_size`, (n) => n > 0 && n <= 1 << 20, 'a positive group size');
      else if (strategy !== 'channel') fail(`${at}.weights.strategy`, `${JSON.stringify(strategy)} is not supported (group, channel)`);
      const order = wa.actorder;
      if (!(order === undefined || order === null || order === false || order === 'static' || order === 'weight' || order === 'group')) {
        fail(`${at}.weights.actorder`, `${JSON.stringify(order)} is not supported (null, static, weight, group)`);
      }
      return { bits: bits as 4 | 8, group, sym: bool(wa.symmetric, `${at}.weights.symmetric`, true), actOrder: order === 'group', zeroMinusOne: false };
    });
    return { layout: 'compressed-tensors', schemes };
  }
  return fail('quant_method', `${JSON.stringify(method)} is not supported (supported: awq, gptq, compressed-tensors)`);
}

// ---------------------------------------------------------------------------------------------------------------
// Shapes, checked before anything is read

const SCALE_DTYPES = new Set(['F16', 'BF16', 'F32']);

function describeModule(inner: WeightsReader, layout: Layout, schemes: Scheme[], prefix: string, where: string): QuantModule {
  const names =
    layout === 'compressed-tensors'
      ? { q: 'weight_packed', s: 'weight_scale', z: 'weight_zero_point', g: 'weight_g_idx', shape: 'weight_shape' }
      : { q: 'qweight', s: 'scales', z: 'qzeros', g: 'g_idx', shape: '' };
  const get = (n: string) => (n ? inner.tensors.get(`${prefix}.${n}`) : undefined);
  const qweight = get(names.q)!;
  const scales = get(names.s);
  const zeros = get(names.z);
  const gIdx = get(names.g);
  const shapeT = get(names.shape);
  const bad = (t: CheckpointTensor, problem: string): never => {
    throw new ModelFileError(t.file, `${t.name}: ${problem}`);
  };
  const expect = (t: CheckpointTensor | undefined, what: string, dtypes: Set<string>, shape: number[]): CheckpointTensor => {
    if (!t) throw new ModelFileError(qweight.file, `${qweight.name} has no ${prefix}.${what} beside it`);
    if (!dtypes.has(t.dtype)) bad(t, `dtype ${t.dtype} (expected ${[...dtypes].join(' or ')})`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) bad(t, `shape [${t.shape}] (expected [${shape}] from ${qweight.name} [${qweight.shape}] and ${where}'s quantization_config)`);
    return t;
  };
  const I32 = new Set(['I32']);
  if (qweight.dtype !== 'I32' || qweight.shape.length !== 2 || qweight.shape[0] === 0 || qweight.shape[1] === 0) bad(qweight, `must be a non-empty 2-D I32 tensor, got ${qweight.dtype} [${qweight.shape}]`);
  const [r, c] = qweight.shape;

  // Which scheme: one (AWQ, GPTQ), or the compressed-tensors group whose bits, group and zero points fit the shapes.
  let scheme = schemes[0];
  if (layout === 'compressed-tensors') {
    const fits = schemes.filter((s) => {
      const inCols = (c * 32) / s.bits;
      const groups = s.group === -1 ? 1 : Math.ceil(inCols / s.group);
      return scales !== undefined && scales.shape.length === 2 && scales.shape[1] === groups && (zeros !== undefined) === !s.sym && (gIdx !== undefined || !s.actOrder);
    });
    const distinct = new Set(fits.map((s) => JSON.stringify(s)));
    if (distinct.size !== 1) {
      throw new ModelFileError(qweight.file, `${qweight.name}: ${distinct.size === 0 ? 'no' : 'more than one'} group of ${where}'s quantization_config.config_groups fits its tensors ([${qweight.shape}], ${prefix}.weight_scale [${scales?.shape ?? 'missing'}], zero point ${zeros ? 'present' : 'absent'})`);
    }
    scheme = fits[0];
  }
  const p = 32 / scheme.bits;
  let out: number;
  let inCols: number;
  if (layout === 'awq') [inCols, out] = [r, c * 8];
  else if (layout === 'gptq') [inCols, out] = [r * p, c];
  else [out, inCols] = [r, c * p];
  if (out * inCols > 2 ** 40) bad(qweight, `[${out}, ${inCols}] is absurdly large`);
  const group = scheme.group === -1 ? inCols : scheme.group;
  const groups = Math.ceil(inCols / group);
  let zerosT: CheckpointTensor | undefined;
  if (layout === 'awq') {
    expect(scales, names.s, SCALE_DTYPES, [groups, out]);
    zerosT = expect(zeros, names.z, I32, [groups, out / 8]);
  } else if (layout === 'gptq') {
    expect(scales, names.s, SCALE_DTYPES, [groups, out]);
    if (out % p !== 0) bad(qweight, `${out} output columns do not pack into qzeros words of ${p}`);
    zerosT = expect(zeros, names.z, I32, [groups, out / p]);
  } else {
    expect(scales, names.s, SCALE_DTYPES, [out, groups]);
    if (!scheme.sym) zerosT = expect(zeros, names.z, I32, [Math.ceil(out / p), groups]);
    expect(shapeT, names.shape, new Set(['I32', 'I64']), [2]);
  }
  if (scheme.actOrder && !gIdx) throw new ModelFileError(qweight.file, `${qweight.name}: act-order (desc_act / actorder) needs ${prefix}.${names.g}`);
  if (gIdx) expect(gIdx, names.g, I32, [inCols]);

  const dense = scheme.actOrder || group % 32 !== 0 || inCols % 32 !== 0;
  const dtype: OutDtype = dense ? 'F16' : scheme.bits === 4 ? (scheme.sym ? 'Q4_0' : 'Q4_ZP') : scheme.sym ? 'Q8_0' : 'Q8_ZP';
  const rowBytes = dense ? inCols * 2 : (inCols / 32) * BLOCK_BYTES[dtype];
  const presented: CheckpointTensor = { name: `${prefix}.weight`, dtype, shape: [out, inCols], file: qweight.file, offset: qweight.offset, byteLength: out * rowBytes };
  return { layout, scheme, out, in: inCols, group, groups, qweight, scales: scales!, zeros: zerosT, gIdx, shape: shapeT, dtype, presented };
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming and repacking

async function* streamRepacked(inner: WeightsReader, modules: Map<string, QuantModule>, wanted: Iterable<CheckpointTensor>, chunkBytes: number): AsyncGenerator<CheckpointChunk> {
  // One inner stream: passed-through tensors as they come, a module's packed tensors gathered whole, then repacked.
  const list: CheckpointTensor[] = [];
  const owner = new Map<string, QuantModule>();
  for (const t of wanted) {
    const m = modules.get(t.name);
    if (m && t === m.presented) {
      for (const c of components(m)) {
        list.push(c);
        owner.set(c.name, m);
      }
    } else list.push(t);
  }
  let gathered = new Map<string, { data: Uint8Array; filled: number }>();
  for await (const chunk of inner.stream(list)) {
    const m = owner.get(chunk.info.name);
    if (!m) {
      yield chunk;
      continue;
    }
    const t = chunk.info;
    let g = gathered.get(t.name);
    if (!g) gathered.set(t.name, (g = { data: new Uint8Array(t.byteLength), filled: 0 }));
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    const rowBytes = t.byteLength / rows;
    if (chunk.data.byteLength !== chunk.rows * rowBytes || (chunk.rowStart + chunk.rows) * rowBytes > t.byteLength) {
      throw new ModelFileError(t.file, `${t.name}: a chunk of ${chunk.data.byteLength} bytes for rows ${chunk.rowStart}..${chunk.rowStart + chunk.rows - 1}`);
    }
    g.data.set(chunk.data, chunk.rowStart * rowBytes);
    g.filled += chunk.data.byteLength;
    const parts = components(m);
    if (parts.every((c) => (gathered.get(c.name)?.filled ?? -1) === c.byteLength)) {
      const bytes = new Map(parts.map((c) => [c.name, gathered.get(c.name)!.data]));
      gathered = new Map();
      yield* repack(m, bytes, chunkBytes);
    }
  }
}

const i32 = (b: Uint8Array) => new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);

/** The scales as f32 values and f16 bits (refusing values f16 cannot hold). */
function readScales(t: CheckpointTensor, b: Uint8Array): { value: Float32Array; half: Uint16Array } {
  const n = b.byteLength / (t.dtype === 'F32' ? 4 : 2);
  const value = new Float32Array(n);
  let half: Uint16Array;
  if (t.dtype === 'F16') {
    half = new Uint16Array(b.buffer, b.byteOffset, n);
    for (let i = 0; i < n; i++) value[i] = f16BitsToF32(half[i]);
  } else {
    half = new Uint16Array(n);
    const bits = t.dtype === 'BF16' ? Uint32Array.from(new Uint16Array(b.buffer, b.byteOffset, n), (h) => h << 16) : new Uint32Array(b.buffer, b.byteOffset, n);
    value.set(new Float32Array(bits.buffer, bits.byteOffset, n));
    for (let i = 0; i < n; i++) half[i] = f32BitsToF16Bits(bits[i]);
  }
  for (let i = 0; i < n; i++) {
    if (!(Math.abs(value[i]) <= 65504)) throw new ModelFileError(t.file, `${t.name}: scale ${value[i]} (element ${i}) does not fit in f16`);
  }
  return { value, half };
}

/** Yields the module's rows repacked, in chunks of at most chunkBytes (or 8 rows). */
function* repack(m: QuantModule, bytes: Map<string, Uint8Array>, chunkBytes: number): Generator<CheckpointChunk> {
  const { out, in: K, groups, group, scheme } = m;
  const b = scheme.bits;
  const p = 32 / b;
  const mask = (1 << b) - 1;
  const qw = i32(bytes.get(m.qweight.name)!);
  const { value: sv, half: sh } = readScales(m.scales, bytes.get(m.scales.name)!);
  const zw = m.zeros ? i32(bytes.get(m.zeros.name)!) : null;
  const symZero = 1 << (b - 1);

  if (m.shape) {
    const sb = bytes.get(m.shape.name)!;
    const dims = m.shape.dtype === 'I64' ? Array.from(new BigInt64Array(sb.buffer, sb.byteOffset, 2), Number) : Array.from(i32(sb));
    if (dims[0] !== out || dims[1] !== K) throw new ModelFileError(m.shape.file, `${m.shape.name}: [${dims}] but ${m.qweight.name} [${m.qweight.shape}] packs [${out}, ${K}]`);
  }
  // Each input column's group: from g_idx, which must be the contiguous k / group unless act-order says otherwise.
  const gOf = new Int32Array(K);
  for (let k = 0; k < K; k++) gOf[k] = Math.floor(k / group);
  if (m.gIdx) {
    const gi = i32(bytes.get(m.gIdx.name)!);
    for (let k = 0; k < K; k++) {
      const g = gi[k];
      if (!(g >= 0 && g < groups)) throw new ModelFileError(m.gIdx.file, `${m.gIdx.name}[${k}] = ${g} is not a group (0 .. ${groups - 1})`);
      if (!scheme.actOrder && g !== gOf[k]) throw new ModelFileError(m.gIdx.file, `${m.gIdx.name}[${k}] = ${g}, but without act-order column ${k} is in group ${gOf[k]}`);
      gOf[k] = g;
    }
  }
  // Scale / zero of (group g, output n); the quants of row n into q[0 .. K).
  const sAt = m.layout === 'compressed-tensors' ? (g: number, n: number) => n * groups + g : (g: number, n: number) => g * out + n;
  const zero = (g: number, n: number): number => {
    if (!zw) return symZero;
    if (m.layout === 'awq') return (zw[g * (out / 8) + (n >> 3)] >>> (4 * AWQ_NIBBLE[n & 7])) & 15;
    if (m.layout === 'gptq') return ((zw[g * (out / p) + Math.floor(n / p)] >>> (b * (n % p))) & mask) + (scheme.zeroMinusOne ? 1 : 0);
    return (zw[Math.floor(n / p) * groups + g] >>> (b * (n % p))) & mask;
  };
  // The quants of TILE output rows nt .. nt + tn - 1 into tile[j K + k], reading the packed words in memory order
  // (AWQ: one word a column k holds the tile's 8 rows; GPTQ: a word row holds consecutive outputs).
  const TILE = 8;
  const tile = new Uint8Array(TILE * K);
  const unpackTile = (nt: number, tn: number): void => {
    if (m.layout === 'awq') {
      const W = out / 8;
      for (let k = 0, at = nt >> 3; k < K; k++, at += W) {
        const w = qw[at];
        for (let j = 0; j < 8; j++) tile[j * K + k] = (w >>> (4 * AWQ_NIBBLE[j])) & 15;
      }
    } else if (m.layout === 'gptq') {
      for (let r = 0; r < K / p; r++) {
        for (let j = 0; j < tn; j++) {
          const w = qw[r * out + nt + j];
          for (let i = 0; i < p; i++) tile[j * K + r * p + i] = (w >>> (b * i)) & mask;
        }
      }
    } else {
      for (let j = 0; j < tn; j++) {
        for (let r = 0, at = (nt + j) * (K / p); r < K / p; r++, at++) {
          const w = qw[at];
          for (let i = 0; i < p; i++) tile[j * K + r * p + i] = (w >>> (b * i)) & mask;
        }
      }
    }
  };

  const rowBytes = m.presented.byteLength / out;
  // Chunks of whole tiles (AWQ's words hold 8 outputs; out is a multiple of 8 there).
  const step = TILE * Math.max(1, Math.floor(chunkBytes / rowBytes / TILE));
  for (let n0 = 0; n0 < out; n0 += step) {
    const rows = Math.min(step, out - n0);
    const data = new Uint8Array(rows * rowBytes);
    for (let n = n0; n < n0 + rows; n++) {
      const j = (n - n0) % TILE;
      if (j === 0) unpackTile(n, Math.min(TILE, n0 + rows - n));
      const q = tile.subarray(j * K, (j + 1) * K);
      const o = (n - n0) * rowBytes;
      if (m.dtype === 'F16') {
        const h = new Uint16Array(data.buffer, o, K);
        for (let k = 0; k < K; k++) {
          const g = gOf[k];
          h[k] = toF16(sv[sAt(g, n)] * (q[k] - zero(g, n)));
        }
        continue;
      }
      const bb = BLOCK_BYTES[m.dtype];
      for (let c = 0; c < K / 32; c++) {
        const g = gOf[32 * c];
        const z = zero(g, n);
        const at = o + c * bb;
        const d = sh[sAt(g, n)];
        data[at] = d & 0xff;
        data[at + 1] = d >> 8;
        const k0 = 32 * c;
        if (m.dtype === 'Q4_0' || m.dtype === 'Q8_0') {
          if (z !== symZero) throw new ModelFileError(m.zeros!.file, `${m.zeros!.name}: symmetric, but group ${g} of output ${n} has zero point ${z} (expected ${symZero})`);
          if (m.dtype === 'Q4_0') for (let j = 0; j < 16; j++) data[at + 2 + j] = q[k0 + j] | (q[k0 + 16 + j] << 4);
          else for (let j = 0; j < 32; j++) data[at + 2 + j] = (q[k0 + j] - 128) & 0xff;
        } else {
          data[at + 2] = z & 0xff;
          data[at + 3] = z >> 8;
          if (m.dtype === 'Q4_ZP') for (let j = 0; j < 16; j++) data[at + 4 + j] = q[k0 + j] | (q[k0 + 16 + j] << 4);
          else data.set(q.subarray(k0, k0 + 32), at + 4);
        }
      }
    }
    yield { info: m.presented, rowStart: n0, rows, data };
  }
}

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);
/** f16 bits of v (an exact product of an f16 / bf16 scale and a small integer, so one rounding). */
function toF16(v: number): number {
  f32View[0] = v;
  return f32BitsToF16Bits(f32Bits[0]);
}
