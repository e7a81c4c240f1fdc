/**
 * Checkpoint bytes -> GPU storage dtype. Safetensors data is little-endian, and so is every platform WebGPU runs
 * on, so bytes are reinterpreted in place through typed-array views (checked once below).
 *
 *   F32  -> f32: a view, no copy          F32  -> f16: round to nearest even (the loop below)
 *   F16  -> f16: a view, no copy          F16  -> f32: exact (65536-entry table)
 *   BF16 -> f32: exact (bits << 16)       BF16 -> f16: round to nearest even (65536-entry table)
 *
 * f16 results are Uint16Array of IEEE binary16 bits (JS has no Float16Array everywhere yet); overflow gives +-inf,
 * tiny values become subnormals or +-0, NaN stays NaN.
 */

export type StorageDtype = 'f32' | 'f16';
/** Floating-point checkpoint dtypes that convert (safetensors names). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('weight conversion assumes a little-endian host (safetensors data is little-endian)');
}

/**
 * Converts a float32 given as its bit pattern to binary16 bits, rounding to nearest, ties to even.
 * Worked example: 1 + 2^-11 (exactly half an f16 ulp above 1) -> 0x3c00 (1.0, even); 1 + 3*2^-11 -> 0x3c02.
 */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const man = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man !== 0 ? 0x200 | (man >>> 13) : 0); // inf, or a quiet NaN
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00; // too large: inf
  if (e <= 0) {
    // Subnormal f16: value = M * 2^(exp - 150) with M the 24-bit significand; f16 counts units of 2^-24,
    // so k = M >> (126 - exp) = M >> (14 - e), rounded. Below 2^-25 (e < -10) everything rounds to zero.
    if (e < -10) return sign;
    const m = man | 0x800000;
    const shift = 14 - e;
    const k = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (rem > half || (rem === half && (k & 1) !== 0) ? k + 1 : k);
  }
  // Normal: keep 10 of 23 mantissa bits; a carry out of the mantissa bumps the exponent (up to inf), as it should.
  const h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  return sign | (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0) ? h + 1 : h);
}

/** binary16 bits -> the float32 value (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

let f16ToF32Table: Float32Array | undefined;
let bf16ToF16Table: Uint16Array | undefined;

/** f32 value of every f16 bit pattern (256 KiB, built on first use). */
function f16Table(): Float32Array {
  if (!f16ToF32Table) {
    f16ToF32Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16ToF32Table[h] = f16BitsToF32(h);
  }
  return f16ToF32Table;
}

/** f16 bits of every bf16 bit pattern (128 KiB, built on first use): bf16 -> f32 is exact, so one rounding. */
function bf16Table(): Uint16Array {
  if (!bf16ToF16Table) {
    bf16ToF16Table = new Uint16Array(65536);
    for (let b = 0; b < 65536; b++) bf16ToF16Table[b] = f32BitsToF16Bits(b << 16);
  }
  return bf16ToF16Table;
}

/**
 * Float32 array -> f16 bits. The hot path (results in the f16 normal range, |x| in [2^-14, 65520)) rounds without
 * branches: rebias the exponent in place (subtract 112 << 23), add 0xfff plus the lowest kept bit (ties to even), and
 * shift out the 13 dropped bits; a carry rolls into the exponent. Everything else goes through f32BitsToF16Bits.
 */
export function f32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length !== src.length) throw new RangeError(`output holds ${out.length} elements, the input ${src.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    const a = x & 0x7fffffff;
    // 0x38800000 = 2^-14 (smallest f16 normal); 0x477ff000 = 65520 (rounds to inf).
    if (a >= 0x38800000 && a < 0x477ff000) {
      out[i] = ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    } else {
      out[i] = f32BitsToF16Bits(x);
    }
  }
  return out;
}

/** Uint16 views of raw bytes; bytes at an odd offset are copied first. */
function u16View(data: Uint8Array): Uint16Array {
  if (data.byteLength % 2 !== 0) throw new RangeError(`16-bit data has an odd byte length ${data.byteLength}`);
  if (data.byteOffset % 2 !== 0) data = data.slice();
  return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
}

function f32View(data: Uint8Array): Float32Array {
  if (data.byteLength % 4 !== 0) throw new RangeError(`F32 data has a byte length ${data.byteLength} not divisible by 4`);
  if (data.byteOffset % 4 !== 0) data = data.slice();
  return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
}

/** Checks a caller-provided output's length, or allocates one. */
function output<T extends Float32Array | Uint16Array>(out: T | undefined, n: number, make: (n: number) => T): T {
  if (!out) return make(n);
  if (out.length !== n) throw new RangeError(`output holds ${out.length} elements, the input ${n}`);
  return out;
}

/**
 * Raw little-endian tensor bytes -> Float32Array. F32 without `out` returns a view of `data` (no copy). Pass `out`
 * (e.g. a view of a mapped staging buffer) to convert without allocating: fresh memory costs page faults that
 * can exceed the conversion itself.
 *
 * @example
 *   const w = toF32(chunk.data, chunk.info.dtype as FloatDtype); // BF16 [r, c] -> Float32Array(r * c)
 */
export function toF32(data: Uint8Array, dtype: FloatDtype, out?: Float32Array): Float32Array {
  assertLittleEndian();
  if (dtype === 'F32') {
    const v = f32View(data);
    if (!out) return v;
    output(out, v.length, (n) => new Float32Array(n)).set(v);
    return out;
  }
  const src = u16View(data);
  const dst = output(out, src.length, (n) => new Float32Array(n));
  if (dtype === 'BF16') {
    const o = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    const n = src.length;
    if (src.byteOffset % 4 === 0) {
      // Two bf16 per 32-bit load: the low half goes up 16 bits, the high half is already in place.
      const pairs = new Uint32Array(src.buffer, src.byteOffset, n >>> 1);
      for (let i = 0, j = 0; i < pairs.length; i++, j += 2) {
        const w = pairs[i];
        o[j] = w << 16;
        o[j + 1] = w & 0xffff0000;
      }
      if (n & 1) o[n - 1] = src[n - 1] << 16;
    } else {
      for (let i = 0; i < n; i++) o[i] = src[i] << 16;
    }
  } else {
    const t = f16Table();
    for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
  }
  return dst;
}

/**
 * Raw little-endian tensor bytes -> binary16 bits (Uint16Array). F16 without `out` returns a view of `data`.
 *
 * @example
 *   const w = toF16(chunk.data, 'BF16'); // upload w as an f16 storage buffer
 */
export function toF16(data: Uint8Array, dtype: FloatDtype, out?: Uint16Array): Uint16Array {
  assertLittleEndian();
  if (dtype === 'F16') {
    const v = u16View(data);
    if (!out) return v;
    output(out, v.length, (n) => new Uint16Array(n)).set(v);
    return out;
  }
  if (dtype === 'F32') {
    const v = f32View(data);
    return f32ToF16(v, output(out, v.length, (n) => new Uint16Array(n)));
  }
  const src = u16View(data);
  const dst = output(out, src.length, (n) => new Uint16Array(n));
  const t = bf16Table();
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
  return dst;
}

/**
 * Converts to the GPU storage dtype: f32 -> Float32Array, f16 -> Uint16Array of binary16 bits; `out`, when given,
 * must be the matching array type and length.
 */
export function convertTensor(data: Uint8Array, from: FloatDtype, to: StorageDtype, out?: Float32Array | Uint16Array): Float32Array | Uint16Array {
  if (out && !(to === 'f32' ? out instanceof Float32Array : out instanceof Uint16Array)) {
    throw new TypeError(`convertTensor to ${to} needs a ${to === 'f32' ? 'Float32Array' : 'Uint16Array'} output`);
  }
  return to === 'f32' ? toF32(data, from, out as Float32Array | undefined) : toF16(data, from, out as Uint16Array | undefined);
}

/**
 * Transposes a row-major [rows, cols] matrix to [cols, rows], e.g. a GPT-2 Conv1D weight stored [in, out] to the
 * [out, in] layout linear layers use. Works in 32x32 tiles so both sides stay in cache.
 *
 * @example
 *   const w = transpose2d(toF16(data, 'F32'), nIn, nOut); // [nOut, nIn]
 */
export function transpose2d<T extends Float32Array | Uint16Array>(src: T, rows: number, cols: number, out?: T): T {
  if (src.length !== rows * cols) throw new RangeError(`transpose2d: ${src.length} elements is not ${rows} x ${cols}`);
  out = output(out, src.length, (n) => new (src.constructor as { new (n: number): T })(n));
  if (out.buffer === src.buffer && out.byteOffset < src.byteOffset + src.byteLength && src.byteOffset < out.byteOffset + out.byteLength) {
    throw new RangeError('transpose2d cannot work in place');
  }
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = src[base + c];
      }
    }
  }
  return out;
}
