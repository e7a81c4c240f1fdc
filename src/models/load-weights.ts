/**
 * Loads a checkpoint onto the GPU, tensor by tensor: host memory holds one tensor (or one 64 MiB row range of a
 * big one) at a time. The checkpoint comes as a WeightsReader (loader/checkpoint.ts: safetensors, GGUF, a repacked
 * AWQ / GPTQ one). The family's weight table (weights.ts) says which slot each tensor fills; fused slots (qkv,
 * gate|up) are filled by row ranges; tied embeddings share one weight; norms and biases are f32. A matrix slot whose
 * tensors are float is stored by the LinearMethod given (layers/linear.ts: dense, or quantized on load); one whose
 * tensors are ggml blocks keeps them as they are (layers/quant: each tensor's rows in its own format), unless it
 * mixes float and block tensors or the slot needs float values (folded constants, transposes, MoE experts): then
 * the blocks are dequantized on the CPU and stored like float ones. `dummy` fills random weights from the config
 * alone (benchmarks).
 */
import type { ModelConfig } from '../config/model-config.js';
import { ModelFileError } from '../errors.js';
import type { GpuContext } from '../gpu/context.js';
import { createTensor, type Tensor } from '../gpu/tensor.js';
import { writeBuffer } from '../gpu/buffers.js';
import type { LinearMethod, LinearWeight, MethodChooser } from '../layers/linear.js';
import { convertTensor, toF32, transpose2d, type FloatDtype } from '../loader/convert.js';
import type { CheckpointChunk, CheckpointTensor, WeightsReader } from '../loader/checkpoint.js';
import { DUMMY_FILE, streamDummyTensors } from '../loader/dummy.js';
import { blockFormat, createQuantWeight, dequantizeRows, formatOfGgmlType, QUANT_FORMATS, quantizeRows, quantMethod, rowBytes, type QuantFormat, type QuantSegment } from '../layers/quant/index.js';
import type { LayerWeights, ModelWeights, MoeWeights } from './decoder.js';
import { familyOf, weightTable } from './registry.js';
import { createExpertWeights, writeExpertRows, type ExpertWeights } from '../ops/moe.js';
import { assembleSlots, EXPERT_SLOTS, MATRIX_SLOTS, NON_WEIGHTS, type ExpertSlot, type MatrixSlot, type VectorSlot, type WeightSpec } from './weights.js';

export interface LoadOptions {
  /**
   * How weight matrices are stored and multiplied (norms and biases stay f32): one method for all, or one per slot
   * (quantization keeps embeddings, the LM head and MoE routers dense).
   */
  method: LinearMethod | MethodChooser;
  /** Random weights from config.json alone (vLLM's load_format='dummy'). */
  dummy?: boolean;
  /** Progress of the upload, in bytes of checkpoint data. */
  onProgress?: (p: { file: string; loadedBytes: number; totalBytes: number }) => void;
}

const key = (slot: string, layer: number) => (layer < 0 ? slot : `${layer}.${slot}`);
const FLOAT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
/** Slots whose checkpoint tensors may hold more rows than the config uses (padded vocabularies, position tables). */
const PADDED: ReadonlySet<string> = new Set(['embed', 'lmHead', 'positions']);

/** The slots' GPU storage, created on first write. */
class SlotStore {
  readonly matrices = new Map<string, LinearWeight>();
  readonly vectors = new Map<string, Tensor>();
  readonly experts = new Map<string, ExpertWeights>();
  constructor(
    private readonly ctx: GpuContext,
    private readonly methodOf: MethodChooser,
    /** Matrix slots (by key) kept in the checkpoint's block formats: their segments of rows, top to bottom. */
    private readonly blockLayouts: ReadonlyMap<string, QuantSegment[]> = new Map(),
  ) {}

  matrix(spec: WeightSpec): LinearWeight {
    const k = key(spec.slot, spec.layer);
    let w = this.matrices.get(k);
    if (!w) {
      const cols = spec.transpose ? spec.shape[0] : spec.shape[1];
      const layout = this.blockLayouts.get(k);
      w = layout ? createQuantWeight(this.ctx, layout, spec.slotRows, cols, k) : this.methodOf(spec.slot, cols).create(this.ctx, spec.slotRows, cols, k);
      this.matrices.set(k, w);
    }
    return w;
  }

  /** Whether a slot keeps its checkpoint blocks. */
  keepsBlocks(spec: WeightSpec): boolean {
    return this.blockLayouts.has(key(spec.slot, spec.layer));
  }

  /** Stacked expert weights (dense f32 / f16: the MoE kernels read them directly). */
  expert(spec: WeightSpec): ExpertWeights {
    const k = key(spec.slot, spec.layer);
    let w = this.experts.get(k);
    if (!w) {
      const dtype = this.methodOf(spec.slot, spec.shape[spec.shape.length - 1]).name === 'f32' ? 'f32' : 'f16';
      w = createExpertWeights(this.ctx, spec.expert!.experts, spec.slotRows, spec.shape[spec.shape.length - 1], dtype, k);
      this.experts.set(k, w);
    }
    return w;
  }

  vector(spec: WeightSpec): Tensor {
    const k = key(spec.slot, spec.layer);
    let t = this.vectors.get(k);
    if (!t) {
      t = createTensor(this.ctx, [spec.slotRows], 'f32', k);
      this.vectors.set(k, t);
    }
    return t;
  }
}

/** Where the weights come from: a name for errors, and the checkpoint's tensors (not opened for dummy weights). */
export interface WeightsSource {
  readonly name: string;
  openWeights(): Promise<WeightsReader>;
}

export async function loadWeights(ctx: GpuContext, source: WeightsSource, cfg: ModelConfig, opts: LoadOptions): Promise<ModelWeights> {
  const specs = weightTable(cfg);
  const { method } = opts;
  const methodOf: MethodChooser = typeof method === 'function' ? method : () => method;
  const hasSlot = new Set<string>();
  if (opts.dummy) {
    // Random weights with the checkpoint's names and shapes, through the same upload path as a real checkpoint.
    const present = specs.filter((s) => !s.optional);
    for (const s of present) hasSlot.add(s.slot);
    const found = new Map(present.map((s) => [s.name, s]));
    const chunks = streamDummyTensors(present, { dtype: methodOf('embed', cfg.hiddenSize).name === 'f32' ? 'f32' : 'f16', reuseBuffer: true });
    // Matrices of a quantized method come as blocks already (a checkpoint of that type), so that a benchmark of a
    // 4-bit model does not spend minutes quantizing noise on the CPU.
    const blockType = (s: WeightSpec): string | null => {
      if (!MATRIX_SLOTS.has(s.slot) || EXPERT_SLOTS.has(s.slot) || s.transpose || s.scale !== undefined || s.shift !== undefined) return null;
      const m = methodOf(s.slot, s.transpose ? s.shape[0] : s.shape[1]);
      return 'writeBlocks' in m ? blockFormat(m.name).ggmlType : null;
    };
    const infos = present.map((s) => ({ name: s.name, dtype: blockType(s) ?? 'F32', shape: s.shape, file: DUMMY_FILE, offset: 0, byteLength: 0 }));
    const store = new SlotStore(ctx, methodOf, blockLayouts(infos, found, `${source.name} (dummy)`));
    const tiles = new Map<string, Uint8Array>();
    const blocks = mapChunks(chunks, (chunk) => {
      const spec = found.get(chunk.info.name)!;
      const type = blockType(spec);
      if (!type) return chunk;
      // The chunk's first rows quantized once per (type, width), repeated: noise of the right format and size.
      const format = formatOfGgmlType(type)!;
      const cols = spec.shape[1];
      const key = `${format}:${cols}`;
      let tile = tiles.get(key);
      if (!tile) {
        const rows = Math.min(chunk.rows, 8);
        tile = quantizeRows(format, toF32(chunk.data.subarray(0, (chunk.data.byteLength / chunk.rows) * rows), chunk.info.dtype as FloatDtype), rows, cols);
        tiles.set(key, tile);
      }
      const rowB = rowBytes(format, cols);
      const data = new Uint8Array(chunk.rows * rowB);
      for (let at = 0; at < data.length; at += tile.length) data.set(tile.subarray(0, Math.min(tile.length, data.length - at)), at);
      return { ...chunk, info: { ...chunk.info, dtype: type }, data };
    });
    await uploadChunks(ctx, cfg, opts, blocks, Infinity, specs, found, store, `${source.name} (dummy)`, source.name);
    return assemble(cfg, store, hasSlot);
  }
  const ckpt = await source.openWeights();
  const canonical = familyOf(cfg).canonicalName ?? ((n: string) => n);
  const byName = new Map(specs.map((s) => [s.name, s]));
  // Checkpoint name -> spec; names the table does not know (other layers, unused extras) are skipped.
  const found = new Map<string, WeightSpec>();
  for (const name of ckpt.tensors.keys()) {
    const spec = NON_WEIGHTS.some((re) => re.test(name)) ? undefined : byName.get(canonical(name));
    if (spec) found.set(name, spec);
  }
  for (const s of found.values()) hasSlot.add(s.slot);
  const where = `${source.name}/${ckpt.files.join(', ')}`;
  if (!hasSlot.has('embed') && !hasSlot.has('lmHead')) throw new ModelFileError(`${source.name}/${ckpt.files[0]}`, 'has neither token embeddings nor an LM head');
  const infos = [...ckpt.tensors.values()].filter((info) => found.has(info.name));
  const layouts = blockLayouts(infos, found, `${source.name}/${ckpt.files[0]}`); // types first: an unloadable one is named as such
  checkShapes(cfg, infos, found, source.name);
  const store = new SlotStore(ctx, methodOf, layouts);
  const totalBytes = infos.reduce((n, i) => n + i.byteLength, 0);
  await uploadChunks(ctx, cfg, opts, ckpt.stream(infos), totalBytes, specs, found, store, where, source.name);
  return assemble(cfg, store, hasSlot);
}

/**
 * Every tensor's shape against the config's, before any GPU buffer is sized from the config: a config that
 * disagrees with its checkpoint (vocab_size 2^40 beside a [2048, 128] embedding) is the file error the upload would
 * give, instead of slots allocated for the config's sizes first (which ran lavapipe out of memory: a native abort).
 */
function checkShapes(cfg: ModelConfig, infos: readonly CheckpointTensor[], found: ReadonlyMap<string, WeightSpec>, sourceName: string): void {
  for (const info of infos) {
    const spec = found.get(info.name)!;
    const want = spec.shape;
    // Embeddings and learned positions may hold more rows than the config uses (padded vocabularies).
    const padded = PADDED.has(spec.slot) && !spec.transpose;
    const ok = info.shape.length === want.length && info.shape.every((d, i) => d === want[i] || (i === 0 && padded && d >= want[0]));
    if (!ok) throw new ModelFileError(`${sourceName}/${info.file}`, `tensor ${info.name} has shape [${info.shape}], expected [${want}] for ${cfg.architecture}`);
  }
}

/**
 * The matrix slots that keep their checkpoint's ggml blocks, with their segments: those whose tensors are all of
 * implemented block formats and need no float work (no folded constants, no transpose, not MoE experts). A tensor
 * of a block type with no implementation is an error naming it.
 */
function blockLayouts(infos: readonly CheckpointTensor[], found: ReadonlyMap<string, WeightSpec>, where: string): Map<string, QuantSegment[]> {
  const bySlot = new Map<string, { spec: WeightSpec; format: QuantFormat | null }[]>();
  for (const info of infos) {
    const spec = found.get(info.name)!;
    const format = FLOAT_BYTES[info.dtype] ? null : formatOfGgmlType(info.dtype);
    if (format === undefined) {
      const known = QUANT_FORMATS.map((f) => f.toUpperCase()).join(', ');
      throw new ModelFileError(where, `tensor ${info.name} has type ${info.dtype}, which webgpu-llm cannot load yet (it loads F32, F16, BF16, ${known})`);
    }
    if (!MATRIX_SLOTS.has(spec.slot) || EXPERT_SLOTS.has(spec.slot)) continue;
    const k = key(spec.slot, spec.layer);
    bySlot.set(k, [...(bySlot.get(k) ?? []), { spec, format }]);
  }
  const layouts = new Map<string, QuantSegment[]>();
  for (const [k, parts] of bySlot) {
    if (parts.some((p) => p.format === null || p.spec.transpose || p.spec.scale !== undefined || p.spec.shift !== undefined)) continue;
    parts.sort((a, b) => a.spec.rowOffset - b.spec.rowOffset);
    const slotRows = parts[0].spec.slotRows;
    const segments: QuantSegment[] = [];
    let at = 0;
    for (const { spec, format } of parts) {
      if (spec.rowOffset !== at) break; // a gap: incomplete, reported after the upload
      const rows = Math.min(slotPartRows(spec), slotRows - at);
      const last = segments[segments.length - 1];
      if (last?.format === format) last.rows += rows;
      else segments.push({ format: format!, rows });
      at += rows;
    }
    if (at === slotRows) layouts.set(k, segments);
  }
  return layouts;
}

function* mapChunks(chunks: Iterable<CheckpointChunk>, f: (c: CheckpointChunk) => CheckpointChunk): Generator<CheckpointChunk> {
  for (const c of chunks) yield f(c);
}

/** The loaded slots as the decoder's weights: which of embedding / LM head the checkpoint has decides tying. */
function assemble(cfg: ModelConfig, store: SlotStore, hasSlot: Set<string>): ModelWeights {
  const mat = (slot: MatrixSlot, layer = -1) => store.matrices.get(key(slot, layer)) ?? null;
  const vec = (slot: VectorSlot, layer = -1) => store.vectors.get(key(slot, layer)) ?? null;
  const w = assembleSlots(cfg.numLayers, hasSlot, mat, vec);
  const layers: LayerWeights[] = w.layers.map((layer, l) => ({ ...layer, moe: cfg.moe?.sparseLayers[l] ? moeWeights(store, l) : null }));
  return { ...w, layers };
}

function moeWeights(store: SlotStore, l: number): MoeWeights {
  const ex = (slot: ExpertSlot) => store.experts.get(key(slot, l))!;
  const mat = (slot: MatrixSlot) => store.matrices.get(key(slot, l)) ?? null;
  const sharedGate = mat('sharedGate');
  return {
    router: mat('router')!,
    gateUp: ex('experts.gateUp'),
    down: ex('experts.down'),
    shared: sharedGate ? { up: mat('sharedUp')!, down: mat('sharedDown')!, gate: sharedGate } : null,
  };
}

/** Rows of the slot a spec's tensor fills (its transposed shape's for Conv1D). */
const slotPartRows = (s: WeightSpec) => (s.transpose ? s.shape[1] : s.shape[0]);

/** Uploads a stream of tensor chunks (a checkpoint's, or dummy ones) into the slots, checking names and shapes. */
async function uploadChunks(
  ctx: GpuContext,
  cfg: ModelConfig,
  opts: LoadOptions,
  chunks: AsyncIterable<CheckpointChunk> | Iterable<CheckpointChunk>,
  totalBytes: number,
  /** The whole weight table, and the tensors of it this stream holds by their stream names. */
  specs: readonly WeightSpec[],
  found: Map<string, WeightSpec>,
  store: SlotStore,
  /** Names the checkpoint in errors about what is missing overall. */
  whereAll: string,
  sourceName: string,
): Promise<void> {
  /** Slot rows (matrices) or elements (vectors) written per spec, to find what the checkpoint lacks. */
  const written = new Map<string, number>();
  let loadedBytes = 0;
  let pendingTranspose: { rows: Uint8Array[]; got: number } | null = null;
  for await (const chunk of chunks) {
    const { info } = chunk;
    const where = info.file === DUMMY_FILE ? whereAll : `${sourceName}/${info.file}`;
    const spec = found.get(info.name);
    if (!spec) continue;
    const want = slotPartRows(spec);
    if (!FLOAT_BYTES[info.dtype] && store.keepsBlocks(spec)) {
      // Rows of raw blocks, stored as they are (padded rows beyond the config's are dropped).
      const w = store.matrix(spec);
      const cols = info.shape[1];
      if (info.shape.length !== 2 || cols !== w.cols || !(info.shape[0] === want || (PADDED.has(spec.slot) && info.shape[0] >= want))) {
        throw new ModelFileError(where, `tensor ${info.name} has shape [${info.shape}], expected [${spec.shape}] for ${cfg.architecture}`);
      }
      const rowBytes = chunk.data.byteLength / chunk.rows;
      const n = Math.min(chunk.rows, Math.max(0, want - chunk.rowStart));
      if (n > 0) quantMethod(formatOfGgmlType(info.dtype)!).writeBlocks(ctx, w, spec.rowOffset + chunk.rowStart, chunk.data.subarray(0, n * rowBytes));
      written.set(spec.name, (written.get(spec.name) ?? 0) + n);
      loadedBytes += chunk.data.byteLength;
      if (Number.isFinite(totalBytes)) opts.onProgress?.({ file: info.file, loadedBytes, totalBytes });
      continue;
    }
    let src: FloatDtype;
    let raw = chunk.data;
    if (FLOAT_BYTES[info.dtype]) {
      src = info.dtype as FloatDtype;
    } else {
      // Blocks in a slot that needs float values: dequantized on the CPU (one chunk at a time).
      const format = formatOfGgmlType(info.dtype)!;
      const cols = info.shape[info.shape.length - 1];
      if (info.shape.length < 2) throw new ModelFileError(where, `tensor ${info.name} of shape [${info.shape}] has block type ${info.dtype}; 1-D tensors must be F32, F16 or BF16`);
      const v = dequantizeRows(format, raw, raw.byteLength / rowBytes(format, cols), cols);
      raw = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      src = 'F32';
    }
    if (spec.scale !== undefined || spec.shift !== undefined) {
      // Folded constants: the values in f32, (x + shift) * scale.
      const v = convertTensor(raw, src, 'f32') as Float32Array;
      const scale = spec.scale ?? 1;
      const shift = spec.shift ?? 0;
      for (let i = 0; i < v.length; i++) v[i] = (v[i] + shift) * scale;
      raw = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      src = 'F32';
    }
    const esize = FLOAT_BYTES[src];
    if (EXPERT_SLOTS.has(spec.slot)) {
      const w = store.expert(spec);
      if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => d !== spec.shape[i])) {
        throw new ModelFileError(where, `tensor ${info.name} has shape [${info.shape}], expected [${spec.shape}] for ${cfg.architecture}`);
      }
      const data = convertTensor(raw, src, w.weight.dtype);
      const slotKey = key(spec.slot, spec.layer);
      if (spec.expert!.index === 'all') {
        // [E, rows, cols] in chunks of whole experts (chunk rows are experts).
        const per = spec.shape[1] * spec.shape[2];
        for (let j = 0; j < chunk.rows; j++) writeExpertRows(ctx, w, chunk.rowStart + j, 0, data.subarray(j * per, (j + 1) * per));
        written.set(slotKey, (written.get(slotKey) ?? 0) + chunk.rows * spec.slotRows);
      } else {
        writeExpertRows(ctx, w, spec.expert!.index, spec.rowOffset + chunk.rowStart, data);
        written.set(slotKey, (written.get(slotKey) ?? 0) + chunk.rows);
      }
    } else if (MATRIX_SLOTS.has(spec.slot)) {
      const w = store.matrix(spec);
      const [rows, cols] = spec.transpose ? [info.shape[1], info.shape[0]] : [info.shape[0], info.shape[1]];
      const okShape = info.shape.length === 2 && cols === w.cols && (rows === want || (PADDED.has(spec.slot) && rows >= want));
      if (!okShape) throw new ModelFileError(where, `tensor ${info.name} has shape [${info.shape}], expected [${spec.shape}] for ${cfg.architecture}`);
      let data = raw;
      let rowStart = chunk.rowStart;
      if (spec.transpose) {
        // Conv1D [in, out]: gather the whole tensor, then transpose to [out, in].
        pendingTranspose ??= { rows: [], got: 0 };
        pendingTranspose.rows.push(data.slice());
        pendingTranspose.got += chunk.rows;
        if (pendingTranspose.got < info.shape[0]) continue;
        data = transposeRaw(concatBytes(pendingTranspose.rows), info.shape[0], info.shape[1], src);
        pendingTranspose = null;
        rowStart = 0;
      }
      // Checkpoints may pad rows beyond what the config uses (vocab, positions): keep the first ones.
      const n = Math.min(data.byteLength / (w.cols * esize), Math.max(0, want - rowStart));
      if (n > 0) w.method.writeRows(ctx, w, spec.rowOffset + rowStart, data.subarray(0, n * w.cols * esize), src);
      written.set(spec.name, (written.get(spec.name) ?? 0) + n);
    } else {
      const t = store.vector(spec);
      if (info.shape.length !== 1 || info.shape[0] !== want) throw new ModelFileError(where, `tensor ${info.name} has shape [${info.shape}], expected [${want}]`);
      writeBuffer(ctx, t.buffer, spec.rowOffset * 4, convertTensor(raw, src, 'f32') as Float32Array);
      written.set(spec.name, want);
    }
    loadedBytes += chunk.data.byteLength;
    if (Number.isFinite(totalBytes)) opts.onProgress?.({ file: info.file, loadedBytes, totalBytes });
  }
  checkComplete(cfg, specs, found, written, whereAll);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.byteLength) - p.byteLength);
  return out;
}

/** A row-major [rows, cols] matrix of raw values (4 or 2 bytes each) transposed to [cols, rows]. */
function transposeRaw(data: Uint8Array, rows: number, cols: number, dtype: FloatDtype): Uint8Array {
  const view = dtype === 'F32' ? new Float32Array(data.buffer, data.byteOffset, rows * cols) : new Uint16Array(data.buffer, data.byteOffset, rows * cols);
  const t = transpose2d(view, rows, cols);
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
}

/**
 * Every tensor the config needs must have been written completely. The embedding and the LM head are checked
 * together (either serves as the other: see assemble), optional tensors not at all.
 */
function checkComplete(cfg: ModelConfig, specs: readonly WeightSpec[], found: Map<string, WeightSpec>, written: Map<string, number>, where: string): void {
  const present = new Set([...found.values()].map((s) => s.name));
  const embedOrHead = [...found.values()].some((s) => s.slot === 'embed' || s.slot === 'lmHead');
  const missing: string[] = [];
  for (const s of specs) {
    if (s.expert) {
      // Either form of the experts (one tensor per expert and projection, or 3-D ones) fills the slot: count its rows.
      if ((written.get(key(s.slot, s.layer)) ?? 0) < s.expert.experts * s.slotRows) missing.push(key(s.slot, s.layer));
      continue;
    }
    if (s.optional) continue;
    if ((s.slot === 'embed' || s.slot === 'lmHead') && embedOrHead && !present.has(s.name)) continue;
    if ((written.get(s.name) ?? 0) < slotPartRows(s)) missing.push(s.layer < 0 ? s.slot : key(s.slot, s.layer));
  }
  if (missing.length > 0) {
    const unique = [...new Set(missing)];
    const list = unique.slice(0, 8).join(', ') + (unique.length > 8 ? ` and ${unique.length - 8} more` : '');
    throw new ModelFileError(where, `missing or incomplete weights for ${cfg.architecture}: ${list}`);
  }
}
