/**
 * A small GGUF writer for tests: files made from parts of the shared GGUF files (splits, corrupted copies) and
 * new tensors. Metadata value types are chosen from the JS value: strings, booleans, integers as u32 (negative:
 * i32), other numbers as f32, typed arrays and string arrays as arrays of their element type.
 */
import type { GgufValue } from '../../src/loader/gguf.js';

export interface GgufTensorOut {
  name: string;
  /** ggml type id (0 F32, 1 F16, 8 Q8_0, ...). */
  type: number;
  /** ggml order: ne[0] innermost. */
  ne: number[];
  data: Uint8Array;
}

/** A number written as f32 whatever its value (writeGguf writes integers as u32 otherwise). */
export class F32 {
  constructor(readonly value: number) {}
}

class Out {
  private parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  num(n: number | bigint, size: 1 | 2 | 4 | 8, kind: 'u' | 'i' | 'f'): void {
    const b = new Uint8Array(size);
    const v = new DataView(b.buffer);
    if (kind === 'f') size === 4 ? v.setFloat32(0, Number(n), true) : v.setFloat64(0, Number(n), true);
    else if (size === 8) kind === 'u' ? v.setBigUint64(0, BigInt(n), true) : v.setBigInt64(0, BigInt(n), true);
    else if (size === 4) kind === 'u' ? v.setUint32(0, Number(n), true) : v.setInt32(0, Number(n), true);
    else if (size === 2) kind === 'u' ? v.setUint16(0, Number(n), true) : v.setInt16(0, Number(n), true);
    else kind === 'u' ? v.setUint8(0, Number(n)) : v.setInt8(0, Number(n));
    this.bytes(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.num(b.length, 8, 'u');
    this.bytes(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const ARRAY_TYPES: [new (...a: never[]) => unknown, number, 1 | 2 | 4 | 8, 'u' | 'i' | 'f'][] = [
  [Uint8Array, 0, 1, 'u'], [Int8Array, 1, 1, 'i'], [Uint16Array, 2, 2, 'u'], [Int16Array, 3, 2, 'i'], [Uint32Array, 4, 4, 'u'],
  [Int32Array, 5, 4, 'i'], [Float32Array, 6, 4, 'f'], [BigUint64Array, 10, 8, 'u'], [BigInt64Array, 11, 8, 'i'], [Float64Array, 12, 8, 'f'],
];

function writeValue(o: Out, v: GgufValue | F32): void {
  if (v instanceof F32) {
    o.num(6, 4, 'u');
    o.num(v.value, 4, 'f');
  } else if (typeof v === 'string') {
    o.num(8, 4, 'u');
    o.str(v);
  } else if (typeof v === 'boolean') {
    o.num(7, 4, 'u');
    o.num(v ? 1 : 0, 1, 'u');
  } else if (typeof v === 'bigint') {
    o.num(v < 0n ? 11 : 10, 4, 'u');
    o.num(v, 8, v < 0n ? 'i' : 'u');
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) (o.num(4, 4, 'u'), o.num(v, 4, 'u'));
    else if (Number.isInteger(v) && v < 0 && v >= -(2 ** 31)) (o.num(5, 4, 'u'), o.num(v, 4, 'i'));
    else (o.num(6, 4, 'u'), o.num(v, 4, 'f'));
  } else if (Array.isArray(v)) {
    o.num(9, 4, 'u');
    const isStr = v.length === 0 || typeof v[0] === 'string';
    o.num(isStr ? 8 : 7, 4, 'u');
    o.num(v.length, 8, 'u');
    for (const e of v) (isStr ? o.str(e as string) : o.num(e ? 1 : 0, 1, 'u'));
  } else {
    const t = ARRAY_TYPES.find(([C]) => v instanceof C);
    if (!t) throw new Error('unsupported metadata value');
    o.num(9, 4, 'u');
    o.num(t[1], 4, 'u');
    o.num(v.length, 8, 'u');
    for (const e of Array.from(v as ArrayLike<number | bigint>)) o.num(e, t[2], t[3]);
  }
}

/** A GGUF v3 file of these metadata pairs (in order) and tensors (data aligned to `alignment`). */
export function writeGguf(metadata: Iterable<[string, GgufValue | F32]>, tensors: GgufTensorOut[], alignment = 32): Uint8Array {
  const kv = [...metadata];
  const o = new Out();
  o.bytes(new TextEncoder().encode('GGUF'));
  o.num(3, 4, 'u');
  o.num(tensors.length, 8, 'u');
  o.num(kv.length, 8, 'u');
  for (const [k, v] of kv) {
    o.str(k);
    writeValue(o, v);
  }
  let rel = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(rel);
    rel = Math.ceil((rel + t.data.length) / alignment) * alignment;
  }
  tensors.forEach((t, i) => {
    o.str(t.name);
    o.num(t.ne.length, 4, 'u');
    for (const d of t.ne) o.num(d, 8, 'u');
    o.num(t.type, 4, 'u');
    o.num(offsets[i], 8, 'u');
  });
  o.bytes(new Uint8Array(Math.ceil(o.length / alignment) * alignment - o.length));
  tensors.forEach((t, i) => {
    o.bytes(t.data);
    const end = offsets[i] + t.data.length;
    const next = i + 1 < tensors.length ? offsets[i + 1] : end;
    o.bytes(new Uint8Array(next - end));
  });
  return o.concat();
}
