/**
 * Loads a checkpoint into cpu.wasm's memory, through the same seams as the GPU loader (models/load-weights.ts): the
 * checkpoint's tensors from its WeightsReader (or dummy ones), matched to slots by the family's weight table
 * (weights.ts), fused slots filled by row ranges, tied embeddings shared, norms and biases f32, folded constants
 * applied. Each matrix slot is stored as segments of rows, each in one format the kernels read packed
 * (assembly/cpu/linear.ts: f32, f16, q8_0, q4_0, q4_k, iq4_nl, iq4_xs):
 * - a slot whose tensors are all blocks of those formats keeps them as they are (a GGUF file);
 * - otherwise the slot takes the format the options choose (modelQuantMethods, as the GPU path: projections in
 *   `quantization`, embeddings and the LM head dense; dense in f16 or f32 as `dtype` says), quantized on load;
 *   blocks of other formats (q6_k, ...) are dequantized on load first;
 * - once all are written, q4_0 and iq4_nl segments are rearranged in place into groups of 4 rows (CpuKernels.packRows:
 *   what the 4-row GEMV reads as one stream).
 * Host memory holds one checkpoint chunk at a time.
 */
import type { ModelConfig } from '../config/model-config.js';
import type { CheckpointChunk, CheckpointTensor } from '../loader/checkpoint.js';
import { convertTensor, toF32, transpose2d, type FloatDtype } from '../loader/convert.js';
import { DUMMY_FILE, streamDummyTensors } from '../loader/dummy.js';
import { InvalidArgumentError, ModelFileError } from '../errors.js';
import { denseMethod, type MethodChooser } from '../layers/linear.js';
import { checkQuantization, dequantizeRows, formatOfGgmlType, modelQuantMethods, quantizeRows, rowBytes as quantRowBytes, type QuantFormat } from '../layers/quant/index.js';
import type { WeightsSource } from '../models/load-weights.js';
import { familyOf, paramCount, weightTable } from '../models/registry.js';
import { assembleSlots, EXPERT_SLOTS, MATRIX_SLOTS, NON_WEIGHTS, type MatrixSlot, type VectorSlot, type WeightSpec } from '../models/weights.js';
import { CPU_FORMATS, cpuBlockBytes, type CpuFormat, type CpuKernels } from './cpu-wasm.js';

/** Rows [rowStart, rowStart + rows) of a matrix, stored in one format at ptr (rowBytes each). */
export interface CpuSegment {
  format: CpuFormat;
  rowStart: number;
  rows: number;
  ptr: number;
  rowBytes: number;
}

/** A weight matrix [rows, cols] (HF's [out, in]) as segments of rows. */
export interface CpuMatrix {
  rows: number;
  cols: number;
  segments: CpuSegment[];
}

/** A norm's weight f32 [H] and, for LayerNorm, its bias (pointers into cpu.wasm's memory). */
export interface CpuNorm {
  weight: number;
  bias: number | null;
}

export interface CpuLayerWeights {
  attnNorm: CpuNorm;
  qkv: CpuMatrix; // [(nH + 2 nKv) D, H]
  qkvBias: number | null; // f32 [(nH + 2 nKv) D]
  qNorm: number | null; // f32 [D] (or [nH D], qkNormMode 'projection')
  kNorm: number | null;
  o: CpuMatrix; // [H, nH D]
  oBias: number | null;
  mlpNorm: CpuNorm;
  postAttnNorm: number | null; // f32 [H]
  postMlpNorm: number | null;
  up: CpuMatrix; // gated: [2I, H] (gate rows, then up rows); plain: [I, H]
  upBias: number | null;
  down: CpuMatrix; // [H, I]
  downBias: number | null;
}

export interface CpuModelWeights {
  embed: CpuMatrix; // [V, H]
  positions: CpuMatrix | null; // [maxPositions + offset, H]
  projectIn: CpuMatrix | null; // [H, P]
  projectOut: CpuMatrix | null; // [P, H]
  finalNorm: CpuNorm | null;
  lmHead: CpuMatrix; // [V, H]; the same object as embed when tied
  layers: CpuLayerWeights[];
}

export interface CpuLoadOptions {
  dtype?: 'auto' | 'float32' | 'float16';
  quantization?: string | null;
  dummy?: boolean;
  /** Bytes the caller allocates after the weights (KV cache, activations): reserved with them, in one grow. */
  reserveAfter?: number;
  onProgress?: (p: { file: string; loadedBytes: number; totalBytes: number }) => void;
}

/** dtype 'auto' keeps weights f32 up to this size (then f16). */
const AUTO_F32_MAX_BYTES = 1 << 30;
const NATIVE_BLOCKS: ReadonlySet<string> = new Set(['q8_0', 'q4_0', 'q4_k', 'iq4_nl', 'iq4_xs']);
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16']);
/** Slots whose checkpoint tensors may hold more rows than the config uses (padded vocabularies, position tables). */
const PADDED: ReadonlySet<string> = new Set(['embed', 'lmHead', 'positions']);
const key = (slot: string, layer: number) => (layer < 0 ? slot : `${layer}.${slot}`);
const partRows = (s: WeightSpec) => (s.transpose ? s.shape[1] : s.shape[0]);

/** Bytes of one row of `cols` values in a format. */
export function cpuRowBytes(format: CpuFormat, cols: number): number {
  return format === 'f32' ? 4 * cols : format === 'f16' ? 2 * cols : quantRowBytes(format, cols);
}

/**
 * Loads the weights; throws ModelFileError for a checkpoint that does not fit the config, naming what is wrong.
 * Before the first tensor is read, cpu.wasm's memory is grown once for every slot's storage (their bytes, returned
 * as `bytes`) and o.reserveAfter, so a model that cannot fit fails before any of it streams.
 */
export async function loadCpuWeights(cpu: CpuKernels, source: WeightsSource, cfg: ModelConfig, o: CpuLoadOptions): Promise<{ weights: CpuModelWeights; bytes: number }> {
  if (cfg.moe) throw new InvalidArgumentError('device', `the CPU backend does not run mixture-of-experts models yet (${cfg.architecture}); use device 'webgpu'`);
  const specs = weightTable(cfg);
  // 'auto': f32 (bf16 / f16 values exactly, and the fastest the f32 SIMD reads: f16 needs a conversion per weight),
  // unless f32 weights would pass AUTO_F32_MAX_BYTES of wasm32's 4 GiB; then f16.
  const dense = o.dtype === 'float16' || (o.dtype !== 'float32' && cfg.dtype !== 'float32' && 4 * paramCount(cfg) > AUTO_F32_MAX_BYTES) ? 'f16' : 'f32';
  const quantization = checkQuantization(o.quantization);
  const chooser: MethodChooser = quantization ? modelQuantMethods(quantization, denseMethod(dense)) : () => denseMethod(dense);
  const formatOf = (slot: string, cols: number): CpuFormat => {
    const name = chooser(slot, cols).name;
    if (!(name in CPU_FORMATS)) throw new InvalidArgumentError('quantization', `the CPU backend reads f32, f16, q8_0, q4_0, q4_k, iq4_nl and iq4_xs weights; quantization '${quantization}' asks for ${name}`);
    return name as CpuFormat;
  };
  // Refused up front, whatever widths this model's slots have (a mix's formats included).
  for (const slot of ['qkv', 'up', 'down']) formatOf(slot, 1 << 16);

  let infos: CheckpointTensor[];
  let stream: AsyncIterable<CheckpointChunk> | Iterable<CheckpointChunk>;
  let where: string;
  const found = new Map<string, WeightSpec>();
  if (o.dummy) {
    const present = specs.filter((s) => !s.optional);
    for (const s of present) found.set(s.name, s);
    infos = present.map((s) => ({ name: s.name, dtype: 'F32', shape: s.shape, file: DUMMY_FILE, offset: 0, byteLength: 0 }));
    stream = streamDummyTensors(present, { dtype: dense, reuseBuffer: true });
    where = `${source.name} (dummy)`;
  } else {
    const ckpt = await source.openWeights();
    const canonical = familyOf(cfg).canonicalName ?? ((n: string) => n);
    const byName = new Map(specs.map((s) => [s.name, s]));
    for (const name of ckpt.tensors.keys()) {
      const spec = NON_WEIGHTS.some((re) => re.test(name)) ? undefined : byName.get(canonical(name));
      if (spec) found.set(name, spec);
    }
    infos = [...ckpt.tensors.values()].filter((i) => found.has(i.name));
    stream = ckpt.stream(infos);
    where = `${source.name}/${ckpt.files.join(', ')}`;
  }
  const store = new SlotStore(cpu, infos, found, formatOf, where);
  const bytes = store.plannedBytes();
  const after = o.reserveAfter ?? 0;
  try {
    cpu.reserve(bytes + after);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new RangeError(`${err.message}: ${where}'s weights take ${bytes} bytes, the KV cache and activations ${after}; lower kvCacheMemoryBytes or quantize the weights`);
  }
  const totalBytes = infos.reduce((n, i) => n + i.byteLength, 0);
  let loadedBytes = 0;
  const tiles = new Map<string, Uint8Array>();
  let pending: { parts: Uint8Array[]; got: number } | null = null;
  for await (const chunk of stream) {
    const { info } = chunk;
    const spec = found.get(info.name);
    if (!spec) continue;
    const at = info.file === DUMMY_FILE ? where : `${source.name}/${info.file}`;
    const want = partRows(spec);
    if (EXPERT_SLOTS.has(spec.slot)) continue; // refused above (cfg.moe)
    if (!MATRIX_SLOTS.has(spec.slot)) {
      if (info.shape.length !== 1 || info.shape[0] !== want) throw new ModelFileError(at, `tensor ${info.name} has shape [${info.shape}], expected [${want}]`);
      let v = convertTensor(chunk.data, info.dtype as FloatDtype, 'f32') as Float32Array;
      v = fold(v, spec);
      cpu.f32().set(v, store.vector(spec) / 4 + spec.rowOffset);
      store.wrote(spec, want);
    } else {
      const [rows, cols] = spec.transpose ? [info.shape[1], info.shape[0]] : [info.shape[0], info.shape[1]];
      if (info.shape.length !== 2 || cols !== spec.shape[spec.transpose ? 0 : 1] || !(rows === want || (PADDED.has(spec.slot) && rows >= want))) {
        throw new ModelFileError(at, `tensor ${info.name} has shape [${info.shape}], expected [${spec.shape}] for ${cfg.architecture}`);
      }
      const m = store.matrix(spec);
      const n = Math.min(chunk.rows, Math.max(0, want - chunk.rowStart));
      // The segment holding the chunk's rows (a tensor lies in one; a Conv1D one is written whole from row 0).
      const first = spec.rowOffset + (spec.transpose ? 0 : Math.min(chunk.rowStart, want - 1));
      const seg = m.segments.find((s) => first >= s.rowStart && first < s.rowStart + s.rows)!;
      if (store.keepsBlocks(spec)) {
        // Raw blocks, as they are (rows beyond the config's dropped).
        const rb = chunk.data.byteLength / chunk.rows;
        cpu.u8().set(chunk.data.subarray(0, n * rb), seg.ptr + (spec.rowOffset + chunk.rowStart - seg.rowStart) * seg.rowBytes);
        store.wrote(spec, n);
      } else {
        let data: Float32Array;
        let rowStart = chunk.rowStart;
        let count = n;
        if (FLOAT_DTYPES.has(info.dtype)) {
          data = toF32(chunk.data, info.dtype as FloatDtype);
        } else {
          const fmt = formatOfGgmlType(info.dtype);
          if (!fmt) throw new ModelFileError(at, `tensor ${info.name} has type ${info.dtype}, which webgpu-llm cannot load`);
          data = dequantizeRows(fmt, chunk.data, chunk.rows, info.shape[1]);
        }
        if (spec.transpose) {
          // Conv1D [in, out]: gathered whole, then transposed to [out, in].
          pending ??= { parts: [], got: 0 };
          pending.parts.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
          pending.got += chunk.rows;
          if (pending.got < info.shape[0]) continue;
          const all = new Float32Array(concat(pending.parts).buffer);
          pending = null;
          data = transpose2d(all, info.shape[0], info.shape[1]);
          rowStart = 0;
          count = want;
        }
        data = fold(data.subarray(0, count * cols), spec);
        writeRows(cpu, seg, spec.rowOffset + rowStart - seg.rowStart, count, cols, data, o.dummy ? tiles : null);
        store.wrote(spec, count);
      }
    }
    loadedBytes += chunk.data.byteLength;
    if (totalBytes > 0) o.onProgress?.({ file: info.file, loadedBytes, totalBytes });
  }
  store.packRows();
  return { weights: store.assemble(cfg, specs), bytes };
}

/** (x + shift) * scale where the weight table folds a constant in (Granite, Gemma). */
function fold(v: Float32Array, spec: WeightSpec): Float32Array {
  if (spec.scale === undefined && spec.shift === undefined) return v;
  const out = new Float32Array(v.length);
  const scale = spec.scale ?? 1;
  const shift = spec.shift ?? 0;
  for (let i = 0; i < v.length; i++) out[i] = (v[i] + shift) * scale;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.byteLength) - p.byteLength);
  return out;
}

/**
 * Rows [row, row + n) of a segment from f32 values, converted to its format. With `tiles` (dummy weights), the
 * quantized formats repeat the blocks of the first rows (noise of the right format, not minutes of quantizing it).
 */
function writeRows(cpu: CpuKernels, seg: CpuSegment, row: number, n: number, cols: number, data: Float32Array, tiles: Map<string, Uint8Array> | null): void {
  if (n <= 0) return;
  const at = seg.ptr + row * seg.rowBytes;
  if (seg.format === 'f32') {
    cpu.f32().set(data.subarray(0, n * cols), at / 4);
  } else if (seg.format === 'f16') {
    const h = convertTensor(new Uint8Array(data.buffer, data.byteOffset, n * cols * 4), 'F32', 'f16') as Uint16Array;
    cpu.u8().set(new Uint8Array(h.buffer, h.byteOffset, h.byteLength), at);
  } else if (tiles) {
    const k = `${seg.format}:${cols}`;
    let tile = tiles.get(k);
    if (!tile) {
      const r = Math.min(n, 8);
      tile = quantizeRows(seg.format as QuantFormat, data.subarray(0, r * cols), r, cols);
      tiles.set(k, tile);
    }
    const bytes = n * seg.rowBytes;
    const u8 = cpu.u8();
    for (let o = 0; o < bytes; o += tile.length) u8.set(tile.subarray(0, Math.min(tile.length, bytes - o)), at + o);
  } else {
    cpu.u8().set(quantizeRows(seg.format as QuantFormat, data.subarray(0, n * cols), n, cols), at);
  }
}

/** The slots' storage in cpu.wasm's memory, allocated on first write; which rows were written, for the final check. */
class SlotStore {
  private readonly matrices = new Map<string, CpuMatrix>();
  private readonly vectors = new Map<string, number>();
  /** Matrix slots kept in the checkpoint's blocks: their segments' formats and rows, top to bottom. */
  private readonly blockLayouts = new Map<string, { format: CpuFormat; rows: number }[]>();
  private readonly written = new Map<string, number>();
  readonly present = new Set<string>();

  constructor(
    private readonly cpu: CpuKernels,
    infos: readonly CheckpointTensor[],
    private readonly found: ReadonlyMap<string, WeightSpec>,
    private readonly formatOf: (slot: string, cols: number) => CpuFormat,
    private readonly where: string,
  ) {
    const bySlot = new Map<string, { spec: WeightSpec; dtype: string }[]>();
    for (const info of infos) {
      const spec = found.get(info.name)!;
      this.present.add(spec.slot);
      if (!MATRIX_SLOTS.has(spec.slot)) continue;
      const k = key(spec.slot, spec.layer);
      bySlot.set(k, [...(bySlot.get(k) ?? []), { spec, dtype: info.dtype }]);
    }
    for (const [k, parts] of bySlot) {
      const fmts = parts.map((p) => formatOfGgmlType(p.dtype));
      if (fmts.some((f) => !f || !NATIVE_BLOCKS.has(f)) || parts.some((p) => p.spec.transpose || p.spec.scale !== undefined || p.spec.shift !== undefined)) continue;
      const sorted = parts.map((p, i) => ({ ...p, format: fmts[i] as CpuFormat })).sort((a, b) => a.spec.rowOffset - b.spec.rowOffset);
      const layout: { format: CpuFormat; rows: number }[] = [];
      let at = 0;
      for (const { spec, format } of sorted) {
        if (spec.rowOffset !== at) break;
        const rows = Math.min(partRows(spec), spec.slotRows - at);
        const last = layout[layout.length - 1];
        if (last?.format === format) last.rows += rows;
        else layout.push({ format, rows });
        at += rows;
      }
      if (at === sorted[0].spec.slotRows) this.blockLayouts.set(k, layout);
    }
  }

  keepsBlocks(spec: WeightSpec): boolean {
    return this.blockLayouts.has(key(spec.slot, spec.layer));
  }

  /** A matrix slot's columns and segments (formats, rows) as they will be stored. */
  private layout(spec: WeightSpec): { cols: number; segments: { format: CpuFormat; rows: number; bytes: number }[] } {
    const cols = spec.transpose ? spec.shape[0] : spec.shape[1];
    const layout = this.blockLayouts.get(key(spec.slot, spec.layer)) ?? [{ format: this.formatOf(spec.slot, cols), rows: spec.slotRows }];
    return { cols, segments: layout.map((s) => ({ ...s, bytes: s.rows * cpuRowBytes(s.format, cols) })) };
  }

  /** Bytes every slot the checkpoint fills takes in cpu.wasm's memory (each block's cpuBlockBytes). */
  plannedBytes(): number {
    const slots = new Map<string, number>();
    for (const spec of this.found.values()) {
      if (EXPERT_SLOTS.has(spec.slot)) continue;
      const k = key(spec.slot, spec.layer);
      if (slots.has(k)) continue;
      const blocks = MATRIX_SLOTS.has(spec.slot) ? this.layout(spec).segments.map((s) => s.bytes) : [spec.slotRows * 4];
      slots.set(k, blocks.reduce((n, b) => n + cpuBlockBytes(b), 0));
    }
    return [...slots.values()].reduce((n, b) => n + b, 0);
  }

  matrix(spec: WeightSpec): CpuMatrix {
    const k = key(spec.slot, spec.layer);
    let m = this.matrices.get(k);
    if (!m) {
      const { cols, segments: layout } = this.layout(spec);
      let rowStart = 0;
      const segments = layout.map(({ format, rows, bytes }) => {
        const seg = { format, rowStart, rows, ptr: this.cpu.alloc(bytes), rowBytes: cpuRowBytes(format, cols) };
        rowStart += rows;
        return seg;
      });
      m = { rows: spec.slotRows, cols, segments };
      this.matrices.set(k, m);
    }
    return m;
  }

  vector(spec: WeightSpec): number {
    const k = key(spec.slot, spec.layer);
    let p = this.vectors.get(k);
    if (p === undefined) {
      p = this.cpu.alloc(spec.slotRows * 4);
      this.vectors.set(k, p);
    }
    return p;
  }

  /** Every segment in the layout the kernels read (CpuKernels.packRows), once its rows are all written. */
  packRows(): void {
    for (const m of this.matrices.values()) for (const s of m.segments) this.cpu.packRows(CPU_FORMATS[s.format], s.ptr, s.rowBytes, s.rows);
  }

  wrote(spec: WeightSpec, rows: number): void {
    this.written.set(spec.name, (this.written.get(spec.name) ?? 0) + rows);
  }

  /** The slots as the decoder's weights, after checking every tensor the config needs was written whole. */
  assemble(cfg: ModelConfig, specs: readonly WeightSpec[]): CpuModelWeights {
    const names = new Set([...this.found.values()].map((s) => s.name));
    const embedOrHead = this.present.has('embed') || this.present.has('lmHead');
    if (!embedOrHead) throw new ModelFileError(this.where, 'has neither token embeddings nor an LM head');
    const missing = specs.filter((s) => {
      if (s.optional || EXPERT_SLOTS.has(s.slot)) return false;
      if ((s.slot === 'embed' || s.slot === 'lmHead') && !names.has(s.name)) return false;
      return (this.written.get(s.name) ?? 0) < partRows(s);
    });
    if (missing.length > 0) {
      const list = [...new Set(missing.map((s) => key(s.slot, s.layer)))];
      throw new ModelFileError(this.where, `missing or incomplete weights for ${cfg.architecture}: ${list.slice(0, 8).join(', ')}${list.length > 8 ? ` and ${list.length - 8} more` : ''}`);
    }
    const mat = (slot: MatrixSlot, l = -1) => this.matrices.get(key(slot, l)) ?? null;
    const vec = (slot: VectorSlot, l = -1) => this.vectors.get(key(slot, l)) ?? null;
    return assembleSlots(cfg.numLayers, this.present, mat, vec);
  }
}
