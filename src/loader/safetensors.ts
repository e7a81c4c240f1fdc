/**
 * Safetensors checkpoints: header parsing (single file or sharded index) and tensor streaming through the
 * platform's ModelSource / ByteSource, so the same code reads local files (Node) and HTTP Range requests (browser).
 *
 * File layout (https://github.com/huggingface/safetensors):
 *   [u64 LE: N][N bytes: JSON header][data]
 *   header = { "<name>": { "dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end] }, "__metadata__": {...} }
 *   offsets are relative to the start of data (byte 8 + N); end - begin = prod(shape) * sizeof(dtype).
 * Only the 8-byte length and the header are read up front; tensor bytes are read when streamed, one tensor (or one
 * row range of a large tensor) at a time, so host memory stays near one chunk.
 */
import { ModelFileError } from '../errors.js';
import type { ByteSource, ModelSource } from '../platform.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Where one tensor's bytes lie. */
export interface TensorInfo {
  /** Checkpoint name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major shape; [] is a scalar. */
  shape: number[];
  /** File holding the bytes, relative to the model folder (`model.safetensors` or a shard). */
  file: string;
  /** Absolute byte offset of the tensor in `file` (8 + header length + data_offsets[0]). */
  offset: number;
  /** prod(shape) * DTYPE_BYTES[dtype]. */
  byteLength: number;
}

export interface SafetensorsHeader {
  /** Tensors in header order. */
  tensors: TensorInfo[];
  /** `__metadata__` (string to string), {} when absent. */
  metadata: Record<string, string>;
}

export interface Checkpoint {
  /** Every tensor by name, across shards. */
  tensors: Map<string, TensorInfo>;
  /** The safetensors files read (one, or the shards in index order). */
  files: string[];
  /** `__metadata__` of all files merged. */
  metadata: Record<string, string>;
  /**
   * Names saved once under another name: torch's `save_model` drops tied duplicates and records
   * `"<dropped>": "<kept>"` in `__metadata__` (tinystories-656K stores only `lm_head.weight`).
   */
  aliases: Map<string, string>;
}

/** One row range of a tensor: rows [rowStart, rowStart + rows) of dim 0, fresh 8-byte-aligned bytes. */
export interface TensorChunk {
  info: TensorInfo;
  rowStart: number;
  /** Rows in this chunk; a tensor that fits in one chunk comes whole (rowStart 0, rows = shape[0], or 1 for a scalar). */
  rows: number;
  /** Raw little-endian bytes of the rows; its own ArrayBuffer (byteOffset 0), so typed-array views work. */
  data: Uint8Array;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** safetensors' own limit on the header (MAX_HEADER_SIZE): a larger length means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000;
/** Tensors larger than this are streamed in row ranges. */
export const DEFAULT_MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * Reads and validates the header of one safetensors file. `file` is the name recorded in TensorInfo (relative
 * to the model folder); errors name `src.name`.
 *
 * @example
 *   const src = await model.open('model.safetensors');
 *   const { tensors } = await readSafetensorsHeader(src, 'model.safetensors');
 */
export async function readSafetensorsHeader(src: ByteSource, file: string): Promise<SafetensorsHeader> {
  const where = src.name;
  const fail = (problem: string): never => {
    throw new ModelFileError(where, problem);
  };
  const size = src.size;
  if (size < 8) fail(`is ${size} bytes, shorter than the 8-byte header length of a safetensors file`);
  const lenBytes = await readExactly(src, 0, 8, 'the header length');
  const view = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  if (hi !== 0 || lo > MAX_HEADER_BYTES) {
    fail(`header length ${hi * 2 ** 32 + lo} is absurd (limit ${MAX_HEADER_BYTES}); not a safetensors file or corrupt`);
  }
  if (8 + lo > size) fail(`header length ${lo} runs past the end of the file (${size} bytes); the file is truncated or corrupt`);
  if (lo < 2) fail(`header length ${lo} is too short to hold a JSON object`);
  const headerBytes = await readExactly(src, 8, lo, 'the header');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');

  const dataStart = 8 + lo;
  const dataSize = size - dataStart;
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = readMetadata(entry, fail);
      continue;
    }
    const t = readEntry(name, entry, fail);
    const [begin, end] = t.offsets;
    if (end > dataSize) {
      fail(`tensor "${name}" data ends at byte ${dataStart + end} but the file is ${size} bytes; the file is truncated`);
    }
    spans.push([begin, end, name]);
    tensors.push({ name, dtype: t.dtype, shape: t.shape, file, offset: dataStart + begin, byteLength: end - begin });
  }
  // Tensors must not share bytes (safetensors rejects overlapping offsets).
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    const [b, , name] = spans[i];
    const [, prevEnd, prevName] = spans[i - 1];
    if (b < prevEnd) fail(`tensors "${prevName}" and "${name}" overlap (data_offsets ${b} < ${prevEnd})`);
  }
  return { tensors, metadata };
}

function readMetadata(entry: unknown, fail: (p: string) => never): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('"__metadata__" must be an object');
  for (const [k, v] of Object.entries(entry as object)) {
    if (typeof v !== 'string') fail(`"__metadata__.${k}" must be a string, got ${JSON.stringify(v)}`);
  }
  return entry as Record<string, string>;
}

function readEntry(
  name: string,
  entry: unknown,
  fail: (p: string) => never,
): { dtype: SafetensorsDtype; shape: number[]; offsets: [number, number] } {
  const bad = (p: string) => fail(`tensor "${name}": ${p}`);
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad('entry must be an object');
  const e = entry as Record<string, unknown>;
  if (e.dtype === undefined) bad('missing "dtype"');
  if (e.shape === undefined) bad('missing "shape"');
  if (e.data_offsets === undefined) bad('missing "data_offsets"');
  if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
    bad(`unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  const dtype = e.dtype as SafetensorsDtype;
  const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!Array.isArray(e.shape) || !e.shape.every(isCount)) bad(`"shape" must be a list of non-negative integers, got ${JSON.stringify(e.shape)}`);
  const shape = e.shape as number[];
  const off = e.data_offsets;
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1]) {
    bad(`"data_offsets" must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
  }
  const [begin, end] = off as [number, number];
  const numel = shape.reduce((a, b) => a * b, 1);
  const expected = numel * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(expected)) bad(`shape ${JSON.stringify(shape)} is absurdly large`);
  if (end - begin !== expected) {
    bad(`data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${expected}`);
  }
  return { dtype, shape, offsets: [begin, end] };
}

/** Reads exactly `length` bytes or throws naming the file and what was being read. */
async function readExactly(src: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  const data = await src.read(offset, length);
  if (data.length !== length) {
    throw new ModelFileError(src.name, `${what}: expected ${length} bytes at offset ${offset}, read ${data.length}; the file is truncated`);
  }
  return data;
}

const joinName = (model: ModelSource, file: string) => `${model.name.replace(/\/+$/, '')}/${file}`;

/**
 * Lists the tensors of a model folder: `model.safetensors`, or the shards named by `model.safetensors.index.json`.
 * Reads only headers. Throws ModelFileError for a missing checkpoint, a malformed index, a shard the index names
 * that does not exist, a tensor missing from its shard, or a tensor present in two shards.
 *
 * @example
 *   const ckpt = await readCheckpoint(model);
 *   ckpt.tensors.get('model.norm.weight'); // { dtype: 'BF16', shape: [2048], file: 'model.safetensors', ... }
 */
export async function readCheckpoint(model: ModelSource): Promise<Checkpoint> {
  if (await model.exists(SINGLE_FILE)) return collect(model, [SINGLE_FILE], null);
  if (!(await model.exists(INDEX_FILE))) {
    throw new ModelFileError(model.name, `has no ${SINGLE_FILE} or ${INDEX_FILE}`);
  }
  const indexName = joinName(model, INDEX_FILE);
  const text = await model.readText(INDEX_FILE);
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(indexName, `is not valid JSON (${(e as Error).message})`);
  }
  const wm = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new ModelFileError(indexName, '"weight_map" is missing or not an object of tensor name -> shard file');
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== 'string' || !isPlainRelative(shard)) {
      throw new ModelFileError(indexName, `weight_map["${name}"] must be a relative file name inside the model folder, got ${JSON.stringify(shard)}`);
    }
    weightMap.set(name, shard);
  }
  if (weightMap.size === 0) throw new ModelFileError(indexName, '"weight_map" is empty');
  const shards = [...new Set(weightMap.values())];
  for (const shard of shards) {
    if (!(await model.exists(shard))) {
      throw new ModelFileError(indexName, `weight_map references shard "${shard}", which does not exist in ${model.name}`);
    }
  }
  return collect(model, shards, { weightMap, indexName });
}

async function collect(
  model: ModelSource,
  files: string[],
  index: { weightMap: Map<string, string>; indexName: string } | null,
): Promise<Checkpoint> {
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  for (const file of files) {
    const src = await model.open(file);
    try {
      const h = await readSafetensorsHeader(src, file);
      Object.assign(metadata, h.metadata);
      for (const t of h.tensors) {
        const prev = tensors.get(t.name);
        if (prev) throw new ModelFileError(src.name, `tensor "${t.name}" is also stored in ${prev.file}`);
        tensors.set(t.name, t);
      }
    } finally {
      await src.close?.();
    }
  }
  if (index) {
    for (const [name, shard] of index.weightMap) {
      if (tensors.get(name)?.file !== shard) {
        throw new ModelFileError(index.indexName, `weight_map puts "${name}" in ${shard}, but that shard has no such tensor`);
      }
    }
  }
  const aliases = new Map<string, string>();
  for (const [k, v] of Object.entries(metadata)) if (!tensors.has(k) && tensors.has(v)) aliases.set(k, v);
  return { tensors, files, metadata, aliases };
}

/** Rejects absolute paths, backslashes and `..` segments so an index cannot reach outside the model folder. */
function isPlainRelative(p: string): boolean {
  return p.length > 0 && !p.startsWith('/') && !p.includes('\\') && !/^[a-zA-Z]+:/.test(p) && !p.split('/').includes('..');
}

/**
 * Streams tensor bytes in the order given: each tensor whole, or in row ranges of at most `maxChunkBytes` when it
 * is larger (a 1 GB embedding arrives as 64 MiB slices of rows). Opens each file once and closes them all when the
 * stream ends or the consumer stops early.
 *
 * @example
 *   for await (const { info, rowStart, rows, data } of streamTensors(model, ckpt.tensors.values())) {
 *     upload(info.name, rowStart, toF16(data, info.dtype));
 *   }
 */
export async function* streamTensors(
  model: ModelSource,
  infos: Iterable<TensorInfo>,
  opts: {
    maxChunkBytes?: number;
    /** Rows per chunk of a tensor are a multiple of this (e.g. a rotary head's rows); default 1. */
    rowMultiple?: (info: TensorInfo) => number;
  } = {},
): AsyncGenerator<TensorChunk> {
  const maxChunk = opts.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  if (!(maxChunk > 0)) throw new RangeError(`maxChunkBytes must be positive, got ${maxChunk}`);
  const open = new Map<string, ByteSource>();
  try {
    for (const info of infos) {
      let src = open.get(info.file);
      if (!src) {
        src = await model.open(info.file);
        open.set(info.file, src);
      }
      const totalRows = info.shape.length === 0 ? 1 : info.shape[0];
      if (info.byteLength === 0) {
        yield { info, rowStart: 0, rows: totalRows, data: new Uint8Array(0) };
        continue;
      }
      const rowBytes = info.byteLength / totalRows;
      const m = opts.rowMultiple?.(info) ?? 1;
      const step = info.byteLength <= maxChunk ? totalRows : Math.max(m, Math.floor(maxChunk / rowBytes / m) * m);
      for (let r = 0; r < totalRows; r += step) {
        const rows = Math.min(step, totalRows - r);
        const bytes = await readExactly(src, info.offset + r * rowBytes, rows * rowBytes, `tensor "${info.name}"`);
        yield { info, rowStart: r, rows, data: ownAligned(bytes) };
      }
    }
  } finally {
    for (const src of open.values()) await src.close?.();
  }
}

/**
 * The bytes in a buffer of their own: a source may hand back a view into a larger (pooled or whole-file) buffer at
 * any byte offset, where Float32Array views would throw and writes would reach the source's memory.
 */
function ownAligned(d: Uint8Array): Uint8Array {
  if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer) return d;
  const copy = new Uint8Array(d.byteLength);
  copy.set(d);
  return copy;
}
