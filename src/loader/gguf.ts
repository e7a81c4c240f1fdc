/**
 * GGUF files (llama.cpp's checkpoint format, versions 2 and 3, little-endian): the header read through a
 * ByteSource, so a local file and an HTTP resource with Range reads both work and only the header is fetched.
 *
 * Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count x  { string key | u32 value_type | value }
 *   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32) | tensor data (each offset relative to here, aligned)
 *   string = u64 byte length | UTF-8 bytes;  array = u32 element type | u64 length | elements
 *
 * A hostile header cannot make us do unbounded work: every count and length is checked against the bytes left in
 * the file before anything is allocated (an element takes at least one byte), and against fixed limits below.
 */
import { ModelFileError } from '../errors.js';
import type { ByteSource } from '../platform.js';

/** What went wrong, for callers and tests that branch on it. */
export type GgufErrorKind = 'truncated' | 'bad-magic' | 'unsupported-version' | 'unknown-type' | 'limit' | 'invalid';

/** A malformed or unsupported GGUF file. */
export class GgufFormatError extends ModelFileError {
  override name = 'GgufFormatError';
  constructor(
    file: string,
    readonly kind: GgufErrorKind,
    problem: string,
  ) {
    super(file, problem);
  }
}

/** Metadata value types (gguf_type). */
export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
  ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

/**
 * A metadata value. 64-bit integers are numbers when they are safe integers, else bigints. Numeric arrays come as
 * typed arrays (64-bit integer ones as BigInt64Array / BigUint64Array), string arrays as string[].
 */
export type GgufValue =
  | number | bigint | boolean | string
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | boolean[] | string[];

/** ggml tensor types: [name, elements per block, bytes per block] (ggml.c's type_traits). */
export const GGML_TYPES: Readonly<Record<number, readonly [string, number, number]>> = {
  0: ['F32', 1, 4], 1: ['F16', 1, 2], 2: ['Q4_0', 32, 18], 3: ['Q4_1', 32, 20], 6: ['Q5_0', 32, 22],
  7: ['Q5_1', 32, 24], 8: ['Q8_0', 32, 34], 9: ['Q8_1', 32, 36], 10: ['Q2_K', 256, 84], 11: ['Q3_K', 256, 110],
  12: ['Q4_K', 256, 144], 13: ['Q5_K', 256, 176], 14: ['Q6_K', 256, 210], 15: ['Q8_K', 256, 292],
  16: ['IQ2_XXS', 256, 66], 17: ['IQ2_XS', 256, 74], 18: ['IQ3_XXS', 256, 98], 19: ['IQ1_S', 256, 50],
  20: ['IQ4_NL', 32, 18], 21: ['IQ3_S', 256, 110], 22: ['IQ2_S', 256, 82], 23: ['IQ4_XS', 256, 136],
  24: ['I8', 1, 1], 25: ['I16', 1, 2], 26: ['I32', 1, 4], 27: ['I64', 1, 8], 28: ['F64', 1, 8],
  29: ['IQ1_M', 256, 56], 30: ['BF16', 1, 2], 34: ['TQ1_0', 256, 54], 35: ['TQ2_0', 256, 66], 39: ['MXFP4', 32, 17],
};

/** Where one tensor's bytes lie. */
export interface GgufTensorInfo {
  name: string;
  /** ggml type id (GGML_TYPES key) and its name, e.g. 8 / 'Q8_0'. */
  type: number;
  typeName: string;
  /** ggml order: ne[0] is the innermost (contiguous) dimension. */
  ne: number[];
  /** Row-major shape as in safetensors / PyTorch: ne reversed. attn_q of Llama: [n_head * head_dim, n_embd]. */
  shape: number[];
  /** Absolute byte offset in the file (data start + the header's relative offset). */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  version: number;
  /** Metadata in file order. */
  metadata: Map<string, GgufValue>;
  /** Tensors in file order. */
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  /** Bytes of header read (up to the end of the tensor infos). */
  headerBytes: number;
}

/** Limits that bound a hostile header; real files are far below them. */
export const GGUF_LIMITS = {
  /** Tensors (the largest models have a few thousand). */
  maxTensors: 1 << 20,
  /** Metadata pairs. */
  maxKeys: 1 << 16,
  /** One string (keys, token texts, chat templates). */
  maxStringBytes: 1 << 24,
  /** One array (vocabularies and merges of a few hundred thousand entries). */
  maxArrayLength: 1 << 24,
  /** The whole header. */
  maxHeaderBytes: 1 << 30,
};

/** GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** Bytes fetched per read while parsing; the buffer grows only for values larger than this. */
const CHUNK = 1 << 20;
const MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const DEFAULT_ALIGNMENT = 32;
/** Smallest encoded size of each value type, to bound counts by the bytes left. */
const MIN_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8 };

/**
 * Reads and validates a GGUF header: metadata and tensor infos. Reads the file in 1 MiB pieces from its start until
 * the tensor infos end; tensor data is not touched.
 *
 * @example
 *   const h = await readGgufHeader(await FsByteSource.open('stories260K.gguf'));
 *   h.metadata.get('general.architecture'); // 'llama'
 *   h.tensors[0]; // { name: 'token_embd.weight', typeName: 'F32', shape: [512, 64], ne: [64, 512], offset: ... }
 */
export async function readGgufHeader(src: ByteSource): Promise<GgufHeader> {
  const r = new HeaderReader(src);
  const file = src.name;
  await r.need(4);
  const magic = r.u32();
  if (magic !== MAGIC) {
    throw new GgufFormatError(file, 'bad-magic', `not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`);
  }
  await r.need(4);
  const version = r.u32();
  if (version !== 2 && version !== 3) {
    const hint = (version & 0xffff) === 0 && version !== 0 ? ' (a big-endian file?)' : version === 1 ? ' (GGUF v1 is obsolete)' : '';
    throw new GgufFormatError(file, 'unsupported-version', `GGUF version ${version} is not supported${hint}; versions 2 and 3 are`);
  }
  await r.need(16);
  const tensorCount = r.count('tensor count', GGUF_LIMITS.maxTensors, 8 + 4 + 8 + 4 + 8);
  const kvCount = r.count('metadata count', GGUF_LIMITS.maxKeys, 8 + 4);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await r.string(`metadata key #${i}`);
    await r.need(4);
    const type = r.u32();
    if (metadata.has(key)) throw new GgufFormatError(file, 'invalid', `metadata key "${key}" appears twice`);
    metadata.set(key, await r.value(type, key));
  }

  let alignment = DEFAULT_ALIGNMENT;
  const a = metadata.get('general.alignment');
  if (a !== undefined) {
    if (typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0 || a > 1 << 16) {
      throw new GgufFormatError(file, 'invalid', `general.alignment must be a power of two, got ${String(a)}`);
    }
    alignment = a;
  }

  const raw: { name: string; type: number; ne: number[]; rel: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = await r.string(`tensor #${i} name`);
    await r.need(4);
    const nDims = r.u32();
    if (nDims < 1 || nDims > MAX_DIMS) throw new GgufFormatError(file, 'invalid', `tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
    await r.need(8 * nDims + 4 + 8);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(r.u64Number(`tensor "${name}" dimension ${d}`));
    const type = r.u32();
    const rel = r.u64Number(`tensor "${name}" offset`);
    if (names.has(name)) throw new GgufFormatError(file, 'invalid', `tensor "${name}" appears twice`);
    names.add(name);
    raw.push({ name, type, ne, rel });
  }
  const headerBytes = r.pos;
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment;

  const tensors = raw.map(({ name, type, ne, rel }) => {
    const traits = GGML_TYPES[type];
    if (!traits) throw new GgufFormatError(file, 'unknown-type', `tensor "${name}" has unknown ggml type ${type}`);
    const [typeName, blockSize, blockBytes] = traits;
    if (ne[0] % blockSize !== 0) {
      throw new GgufFormatError(file, 'invalid', `tensor "${name}": ${typeName} needs ne[0] (${ne[0]}) to be a multiple of ${blockSize}`);
    }
    const numel = ne.reduce((x, y) => x * y, 1);
    const byteLength = (numel / blockSize) * blockBytes;
    if (!Number.isSafeInteger(byteLength)) throw new GgufFormatError(file, 'limit', `tensor "${name}" shape [${ne}] is absurdly large`);
    if (rel % alignment !== 0) throw new GgufFormatError(file, 'invalid', `tensor "${name}" offset ${rel} is not aligned to ${alignment}`);
    const offset = dataOffset + rel;
    if (offset + byteLength > src.size) {
      throw new GgufFormatError(file, 'truncated', `tensor "${name}" ends at byte ${offset + byteLength} but the file is ${src.size} bytes; the file is truncated`);
    }
    return { name, type, typeName, ne, shape: [...ne].reverse(), offset, byteLength };
  });
  // Tensors must not share bytes.
  const spans = [...tensors].sort((x, y) => x.offset - y.offset);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1];
    if (spans[i].offset < prev.offset + prev.byteLength) {
      throw new GgufFormatError(file, 'invalid', `tensors "${prev.name}" and "${spans[i].name}" overlap`);
    }
  }
  return { version, metadata, tensors, alignment, dataOffset, headerBytes };
}

/** The raw bytes of one tensor (its own ArrayBuffer, so typed-array views work). */
export async function readGgufTensorBytes(src: ByteSource, t: GgufTensorInfo): Promise<Uint8Array> {
  const data = await src.read(t.offset, t.byteLength);
  if (data.length !== t.byteLength) {
    throw new GgufFormatError(src.name, 'truncated', `tensor "${t.name}": read ${data.length} of ${t.byteLength} bytes; the file is truncated`);
  }
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
}

// ignoreBOM: a string that starts with U+FEFF keeps it (Llama 2's vocabulary has a token of it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sequential little-endian reads over a window of the file that slides forward as parsing goes. */
class HeaderReader {
  /** Absolute file offset of the next byte to parse. */
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  /** Absolute file offset of buf[0]. */
  private base = 0;

  constructor(private readonly src: ByteSource) {}

  private fail(kind: GgufErrorKind, problem: string): never {
    throw new GgufFormatError(this.src.name, kind, problem);
  }

  /** Makes `n` bytes from `pos` available, reading ahead by CHUNK. */
  async need(n: number): Promise<void> {
    if (this.pos + n <= this.base + this.buf.length) return;
    if (this.pos + n > this.src.size) {
      this.fail('truncated', `the header runs past the end of the file (${n} bytes needed at offset ${this.pos}, file is ${this.src.size} bytes); the file is truncated`);
    }
    if (this.pos + n > GGUF_LIMITS.maxHeaderBytes) this.fail('limit', `the header is larger than ${GGUF_LIMITS.maxHeaderBytes} bytes`);
    const len = Math.min(Math.max(n, CHUNK), this.src.size - this.pos);
    const data = await this.src.read(this.pos, len);
    if (data.length < n) this.fail('truncated', `read ${data.length} of ${n} bytes at offset ${this.pos}; the file is truncated`);
    this.buf = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.base = this.pos;
  }

  private at(size: number): number {
    const o = this.pos - this.base;
    this.pos += size;
    return o;
  }

  u32(): number {
    return this.view.getUint32(this.at(4), true);
  }

  /** A u64 that must be a safe integer. */
  u64Number(what: string): number {
    const o = this.at(8);
    const lo = this.view.getUint32(o, true);
    const hi = this.view.getUint32(o + 4, true);
    if (hi >= 1 << 21) this.fail('limit', `${what} (${(BigInt(hi) << 32n) | BigInt(lo)}) is absurdly large`);
    return hi * 2 ** 32 + lo;
  }

  /** A u64 count bounded by `max` and by the bytes left when each item takes at least `minItemBytes`. */
  count(what: string, max: number, minItemBytes: number): number {
    const n = this.u64Number(what);
    if (n > max) this.fail('limit', `${what} ${n} exceeds the limit ${max}`);
    const left = this.src.size - this.pos;
    if (n * minItemBytes > left) this.fail('truncated', `${what} ${n} cannot fit in the ${left} bytes left in the file; the file is truncated or corrupt`);
    return n;
  }

  async string(what: string): Promise<string> {
    await this.need(8);
    const len = this.count(`${what}: string length`, GGUF_LIMITS.maxStringBytes, 1);
    await this.need(len);
    const o = this.at(len);
    try {
      return utf8.decode(this.buf.subarray(o, o + len));
    } catch {
      return this.fail('invalid', `${what} is not valid UTF-8`);
    }
  }

  async value(type: number, key: string): Promise<GgufValue> {
    if (type === GgufValueType.STRING) return this.string(`value of "${key}"`);
    if (type === GgufValueType.ARRAY) return this.array(key);
    const size = scalarBytes(type);
    if (size === 0) this.fail('unknown-type', `metadata "${key}" has unknown value type ${type}`);
    await this.need(size);
    const v = this.view;
    const o = this.at(size);
    switch (type) {
      case GgufValueType.UINT8: return v.getUint8(o);
      case GgufValueType.INT8: return v.getInt8(o);
      case GgufValueType.UINT16: return v.getUint16(o, true);
      case GgufValueType.INT16: return v.getInt16(o, true);
      case GgufValueType.UINT32: return v.getUint32(o, true);
      case GgufValueType.INT32: return v.getInt32(o, true);
      case GgufValueType.FLOAT32: return v.getFloat32(o, true);
      case GgufValueType.FLOAT64: return v.getFloat64(o, true);
      case GgufValueType.BOOL: {
        const b = v.getUint8(o);
        if (b > 1) this.fail('invalid', `metadata "${key}": bool byte ${b} is neither 0 nor 1`);
        return b === 1;
      }
      case GgufValueType.UINT64: return narrow(v.getBigUint64(o, true));
      default: return narrow(v.getBigInt64(o, true)); // INT64
    }
  }

  private async array(key: string): Promise<GgufValue> {
    await this.need(12);
    const type = this.u32();
    if (type === GgufValueType.ARRAY) this.fail('unknown-type', `metadata "${key}": nested arrays are not supported`);
    const min = MIN_BYTES[type];
    if (min === undefined) this.fail('unknown-type', `metadata "${key}" is an array of unknown value type ${type}`);
    const n = this.count(`metadata "${key}": array length`, GGUF_LIMITS.maxArrayLength, min);
    if (type === GgufValueType.STRING) {
      const out: string[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = await this.string(`"${key}"[${i}]`);
      return out;
    }
    const bytes = n * min;
    await this.need(bytes);
    const o = this.at(bytes);
    // Copy to a fresh, aligned buffer (the window's offset may not be aligned for the element size).
    const copy = this.buf.slice(o, o + bytes).buffer;
    switch (type) {
      case GgufValueType.UINT8: return new Uint8Array(copy);
      case GgufValueType.INT8: return new Int8Array(copy);
      case GgufValueType.UINT16: return new Uint16Array(copy);
      case GgufValueType.INT16: return new Int16Array(copy);
      case GgufValueType.UINT32: return new Uint32Array(copy);
      case GgufValueType.INT32: return new Int32Array(copy);
      case GgufValueType.FLOAT32: return new Float32Array(copy);
      case GgufValueType.FLOAT64: return new Float64Array(copy);
      case GgufValueType.UINT64: return new BigUint64Array(copy);
      case GgufValueType.INT64: return new BigInt64Array(copy);
      default: {
        const u8 = new Uint8Array(copy); // BOOL
        const out: boolean[] = new Array(n);
        for (let i = 0; i < n; i++) {
          if (u8[i] > 1) this.fail('invalid', `metadata "${key}"[${i}]: bool byte ${u8[i]} is neither 0 nor 1`);
          out[i] = u8[i] === 1;
        }
        return out;
      }
    }
  }
}

function scalarBytes(type: number): number {
  return type === GgufValueType.STRING || type === GgufValueType.ARRAY ? 0 : (MIN_BYTES[type] ?? 0);
}

function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
