/**
 * Loads a checkpoint onto the GPU, tensor by tensor: host memory holds one tensor (or one 64 MiB row range of a
 * big one) at a time. Names map to slots through weight-map.ts; fused slots (qkv, gate|up) are filled by row
 * ranges; tied embeddings share one Weight. `dummy` fills random weights from the config alone (benchmarks).
 */
import type { ModelConfig } from '../config/model-config.js';
import { ModelFileError } from '../errors.js';
import type { GpuContext } from '../gpu/context.js';
import { createTensor, createWeight, writeWeightRows, type Tensor, type Weight } from '../gpu/tensor.js';
import { writeBuffer } from '../gpu/buffers.js';
import { convertTensor, transpose2d, type FloatDtype } from '../loader/convert.js';
import { DUMMY_FILE, streamDummyTensors } from '../loader/dummy.js';
import { readCheckpoint, streamTensors, type TensorChunk } from '../loader/safetensors.js';
import type { ModelSource } from '../platform.js';
import type { LayerWeights, ModelWeights } from './transformer.js';
import { WeightMap, type MatrixSlot, type Part, type VectorSlot } from './weight-map.js';

export interface LoadOptions {
  /** Storage dtype of the weight matrices (norms and biases stay f32). */
  dtype: 'f32' | 'f16';
  /** Random weights from config.json alone (vLLM's load_format='dummy'). */
  dummy?: boolean;
  /** Progress of the upload, in bytes of checkpoint data. */
  onProgress?: (p: { file: string; loadedBytes: number; totalBytes: number }) => void;
}

/** Row offset of each part inside its fused slot. */
function partOffset(cfg: ModelConfig, part: Part | undefined): number {
  const D = cfg.headDim;
  switch (part) {
    case 'k':
      return cfg.numHeads * D;
    case 'v':
      return (cfg.numHeads + cfg.numKvHeads) * D;
    case 'up':
      return cfg.intermediateSize;
    default:
      return 0;
  }
}

/** Rows of each part, for shape checks. */
function partRows(cfg: ModelConfig, slotRows: number, part: Part | undefined): number {
  if (part === 'q') return cfg.numHeads * cfg.headDim;
  if (part === 'k' || part === 'v') return cfg.numKvHeads * cfg.headDim;
  if (part === 'gate' || part === 'up') return cfg.intermediateSize;
  return slotRows;
}

type Slots = { matrices: Map<string, Weight>; vectors: Map<string, Tensor> };

/** The weight shapes the transformer needs, by slot. */
function shapes(cfg: ModelConfig) {
  const H = cfg.hiddenSize;
  const qkv = (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim;
  const up = cfg.gatedMlp ? 2 * cfg.intermediateSize : cfg.intermediateSize;
  const matrix: Record<MatrixSlot, [number, number]> = {
    embed: [cfg.vocabSize, H],
    lmHead: [cfg.vocabSize, H],
    positions: [cfg.maxModelLen + cfg.learnedPositionOffset, H],
    qkv: [qkv, H],
    o: [H, cfg.numHeads * cfg.headDim],
    up: [up, H],
    down: [H, cfg.intermediateSize],
  };
  const vector: Record<VectorSlot, number> = {
    'finalNorm.weight': H, 'finalNorm.bias': H, 'attnNorm.weight': H, 'attnNorm.bias': H,
    'mlpNorm.weight': H, 'mlpNorm.bias': H, qkvBias: qkv, oBias: H, upBias: up, downBias: H,
    qNorm: cfg.headDim, kNorm: cfg.headDim,
  };
  return { matrix, vector };
}

/** The vector slots this config uses, per layer and for the model. */
function usedVectors(cfg: ModelConfig): { layer: VectorSlot[]; model: VectorSlot[] } {
  const layer: VectorSlot[] = ['attnNorm.weight', 'mlpNorm.weight'];
  if (cfg.normBias) layer.push('attnNorm.bias', 'mlpNorm.bias');
  if (cfg.qkvBias) layer.push('qkvBias');
  if (cfg.oBias) layer.push('oBias');
  if (cfg.mlpBias) layer.push('upBias', 'downBias');
  if (cfg.qkNorm) layer.push('qNorm', 'kNorm');
  const model: VectorSlot[] = [];
  if (cfg.finalNorm) model.push('finalNorm.weight');
  if (cfg.finalNorm && cfg.normBias) model.push('finalNorm.bias');
  return { layer, model };
}

const key = (slot: string, layer: number) => (layer < 0 ? slot : `${layer}.${slot}`);

export async function loadWeights(ctx: GpuContext, source: ModelSource, cfg: ModelConfig, opts: LoadOptions): Promise<ModelWeights> {
  if (cfg.wordEmbedProjDim !== null) {
    throw new ModelFileError(`${source.name}/config.json`, `word_embed_proj_dim ${cfg.wordEmbedProjDim} != hidden_size is not supported yet`);
  }
  const { matrix, vector } = shapes(cfg);
  const used = usedVectors(cfg);
  const slots: Slots = { matrices: new Map(), vectors: new Map() };
  const mat = (slot: MatrixSlot, layer: number) => {
    const k = key(slot, layer);
    let w = slots.matrices.get(k);
    if (!w) {
      const [r, c] = matrix[slot];
      w = createWeight(ctx, r, c, opts.dtype, k);
      slots.matrices.set(k, w);
    }
    return w;
  };
  const vec = (slot: VectorSlot, layer: number) => {
    const k = key(slot, layer);
    let t = slots.vectors.get(k);
    if (!t) {
      t = createTensor(ctx, [vector[slot]], 'f32', k);
      slots.vectors.set(k, t);
    }
    return t;
  };

  // Which matrices the checkpoint has decides tying: an LM head alone (tinystories-656K) serves as the embedding.
  let hasEmbed = true;
  let hasLmHead = !cfg.tieWordEmbeddings;
  const map = new WeightMap(cfg.modelType);
  if (opts.dummy) {
    // Random weights with the checkpoint's names and shapes, through the same upload path as a real checkpoint.
    hasLmHead = !cfg.tieWordEmbeddings;
    const chunks = streamDummyTensors(cfg, { dtype: opts.dtype, reuseBuffer: true });
    await uploadChunks(ctx, cfg, opts, chunks, Infinity, map, { mat, vec, hasEmbed, hasLmHead, used }, `${source.name} (dummy)`, source.name);
  } else {
    const ckpt = await readCheckpoint(source);
    // Aliases (tied duplicates torch dropped) need no upload: the missing side shares the stored matrix.
    const has = (slot: MatrixSlot) => [...ckpt.tensors.keys()].some((n) => map.resolve(n)?.slot === slot);
    hasEmbed = has('embed');
    hasLmHead = has('lmHead');
    if (!hasEmbed && !hasLmHead) throw new ModelFileError(`${source.name}/${ckpt.files[0]}`, 'has neither token embeddings nor an LM head');
    const infos = [...ckpt.tensors.values()].filter((info) => {
      const r = map.resolve(info.name);
      return r && r.layer < cfg.numLayers;
    });
    const totalBytes = infos.reduce((n, i) => n + i.byteLength, 0);
    const where = `${source.name}/${ckpt.files.join(', ')}`;
    await uploadChunks(ctx, cfg, opts, streamTensors(source, infos), totalBytes, map, { mat, vec, hasEmbed, hasLmHead, used }, where, source.name);
  }
  const embed = hasEmbed ? mat('embed', -1) : mat('lmHead', -1);
  const lmHead = hasLmHead ? mat('lmHead', -1) : embed;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const v = (s: VectorSlot) => (used.layer.includes(s) ? vec(s, l) : null);
    layers.push({
      attnNorm: { weight: vec('attnNorm.weight', l), bias: v('attnNorm.bias') },
      qkv: mat('qkv', l),
      qkvBias: v('qkvBias'),
      qNorm: v('qNorm'),
      kNorm: v('kNorm'),
      o: mat('o', l),
      oBias: v('oBias'),
      mlpNorm: { weight: vec('mlpNorm.weight', l), bias: v('mlpNorm.bias') },
      up: mat('up', l),
      upBias: v('upBias'),
      down: mat('down', l),
      downBias: v('downBias'),
    });
  }
  const weights: ModelWeights = {
    embed,
    positions: cfg.positions === 'learned' ? mat('positions', -1) : null,
    finalNorm: cfg.finalNorm ? { weight: vec('finalNorm.weight', -1), bias: cfg.normBias ? vec('finalNorm.bias', -1) : null } : null,
    lmHead,
    layers,
  };
  return weights;
}

interface UploadState {
  mat: (slot: MatrixSlot, layer: number) => Weight;
  vec: (slot: VectorSlot, layer: number) => Tensor;
  hasEmbed: boolean;
  hasLmHead: boolean;
  used: { layer: VectorSlot[]; model: VectorSlot[] };
}

/** Uploads a stream of tensor chunks (a checkpoint's, or dummy ones) into the slots, checking names and shapes. */
async function uploadChunks(
  ctx: GpuContext,
  cfg: ModelConfig,
  opts: LoadOptions,
  chunks: AsyncIterable<TensorChunk> | Iterable<TensorChunk>,
  totalBytes: number,
  map: WeightMap,
  st: UploadState,
  /** Names the checkpoint in errors about what is missing overall. */
  whereAll: string,
  sourceName: string,
): Promise<void> {
  const { matrix } = shapes(cfg);
  /** Rows (matrices) or elements (vectors) written per slot, to find what the checkpoint lacks. */
  const written = new Map<string, number>();
  let loadedBytes = 0;
  let pendingTranspose: { rows: (Float32Array | Uint16Array)[]; got: number } | null = null;
  for await (const chunk of chunks) {
    const { info } = chunk;
    const where = info.file === DUMMY_FILE ? whereAll : `${sourceName}/${info.file}`;
    const r = map.resolve(info.name);
    if (!r || r.layer >= cfg.numLayers) continue;
    if (!['F32', 'F16', 'BF16'].includes(info.dtype)) throw new ModelFileError(where, `tensor ${info.name} has dtype ${info.dtype}; expected F32, F16 or BF16`);
    const layer = r.layer;
    const isMatrix = ['embed', 'positions', 'lmHead', 'qkv', 'o', 'up', 'down'].includes(r.slot);
    if (isMatrix) {
      const slot = r.slot as MatrixSlot;
      const w = st.mat(slot, layer);
      const want = partRows(cfg, matrix[slot][0], r.part);
      const [rows, cols] = r.transpose ? [info.shape[1], info.shape[0]] : [info.shape[0], info.shape[1]];
      const okShape = info.shape.length === 2 && cols === w.cols && (rows === want || (slot === 'positions' && rows >= want) || ((slot === 'embed' || slot === 'lmHead') && rows >= cfg.vocabSize));
      if (!okShape) throw new ModelFileError(where, `tensor ${info.name} has shape [${info.shape}], expected [${r.transpose ? [w.cols, want] : [want, w.cols]}] for ${cfg.architecture}`);
      let data = convertTensor(chunk.data, info.dtype as FloatDtype, opts.dtype);
      let rowStart = chunk.rowStart;
      if (r.transpose) {
        // Conv1D [in, out]: gather the whole tensor, then transpose to [out, in].
        pendingTranspose ??= { rows: [], got: 0 };
        pendingTranspose.rows.push(data.slice());
        pendingTranspose.got += chunk.rows;
        if (pendingTranspose.got < info.shape[0]) continue;
        const all = concat(pendingTranspose.rows, opts.dtype);
        pendingTranspose = null;
        data = transpose2d(all, info.shape[0], info.shape[1]);
        rowStart = 0;
      }
      // Checkpoints may pad rows beyond what the config uses (vocab, positions): keep the first ones.
      const maxRows = Math.min(want, Math.max(0, want - rowStart));
      const n = Math.min(data.length / w.cols, maxRows);
      if (n > 0) writeWeightRows(ctx, w, partOffset(cfg, r.part) + rowStart, data.subarray(0, n * w.cols));
      written.set(key(slot, layer), (written.get(key(slot, layer)) ?? 0) + n);
    } else {
      const slot = r.slot as VectorSlot;
      const t = st.vec(slot, layer);
      const want = partRows(cfg, t.shape[0], r.part);
      if (info.shape.length !== 1 || info.shape[0] !== want) throw new ModelFileError(where, `tensor ${info.name} has shape [${info.shape}], expected [${want}]`);
      const data = convertTensor(chunk.data, info.dtype as FloatDtype, 'f32') as Float32Array;
      writeBuffer(ctx, t.buffer, partOffset(cfg, r.part) * 4, data);
      written.set(key(slot, layer), (written.get(key(slot, layer)) ?? 0) + want);
    }
    loadedBytes += chunk.data.byteLength;
    if (Number.isFinite(totalBytes)) opts.onProgress?.({ file: info.file, loadedBytes, totalBytes });
  }
  checkComplete(cfg, written, st, whereAll);
}

function concat(parts: (Float32Array | Uint16Array)[], dtype: 'f32' | 'f16'): Float32Array | Uint16Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
  let at = 0;
  for (const p of parts) out.set(p as never, (at += p.length) - p.length);
  return out;
}

/** Every slot the config needs must have been filled completely (fused slots: all their parts). */
function checkComplete(cfg: ModelConfig, written: Map<string, number>, st: UploadState, where: string): void {
  const { matrix, vector } = shapes(cfg);
  const missing: string[] = [];
  const need = (k: string, size: number) => {
    if ((written.get(k) ?? 0) < size) missing.push(k);
  };
  if (st.hasEmbed) need('embed', matrix.embed[0]);
  if (st.hasLmHead) need('lmHead', matrix.lmHead[0]);
  if (cfg.positions === 'learned') need('positions', matrix.positions[0]);
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const m of ['qkv', 'o', 'up', 'down'] as const) need(key(m, l), matrix[m][0]);
    for (const v of st.used.layer) need(key(v, l), vector[v]);
  }
  for (const v of st.used.model) need(v, vector[v]);
  if (missing.length > 0) {
    const list = missing.slice(0, 8).join(', ') + (missing.length > 8 ? ` and ${missing.length - 8} more` : '');
    throw new ModelFileError(where, `missing or incomplete weights for ${cfg.architecture}: ${list}`);
  }
}
