/**
 * The int8 readers of the block formats (BlockFormat.wgslI8), for the int8-activation GEMV
 * (shaders/linear.q.gemv.i8.wgsl, llama.cpp's MMVQ): a 32-element chunk of a weight row as 32 integer quants packed
 * 4 to a word (element 4 i + e in byte e of word i, as the quantized activations) with the scales that make them
 * values:
 *   struct QI8 { q: array<u32, 8>, d: vec2<f32>, m: f32 }
 *   fn qChunkI8(row: u32, c: u32) -> QI8
 * element j = d[j / 16] * i8(byte j) + m. The GEMV takes dot4I8Packed of quant words with activation words, so a
 * chunk costs 8 integer dot instructions per token; m (a block minimum: q4_1, q5_1, q4_k, q5_k) multiplies the
 * activation block's sum. Formats whose quants are offset (q4_0's q - 8, q5_0's q - 16, q6_k's q - 32) are turned
 * into signed bytes in the word: flip the sign bit of the field, then copy it into the byte's upper bits (a
 * multiplication of the sign bits that cannot carry across bytes). iq4_nl / iq4_xs look their int8 levels up
 * (iq4.ts's IQ4_LOOKUP_WGSL). Formats without a reader (q2_k, q3_k, the HF formats) run the float GEMV.
 */
import { IQ4_LOOKUP_WGSL } from './iq4.js';

/** The struct every reader returns (declared once by the kernel's prelude: linear.q.gemv.i8.wgsl needs it). */
export const QI8_STRUCT = `struct QI8 {
  q: array<u32, 8>,
  d: vec2<f32>,
  m: f32,
}
/** A token's activation chunk a (32 int8, 8 words) with scales xd = (d_x, d_x sum(a)) dotted with a weight chunk. */
fn dotI8(a: array<vec4<u32>, 2>, xd: vec2<f32>, wq: QI8) -> f32 {
  let s0 = dot4I8Packed(a[0].x, wq.q[0]) + dot4I8Packed(a[0].y, wq.q[1]) + dot4I8Packed(a[0].z, wq.q[2]) + dot4I8Packed(a[0].w, wq.q[3]);
  let s1 = dot4I8Packed(a[1].x, wq.q[4]) + dot4I8Packed(a[1].y, wq.q[5]) + dot4I8Packed(a[1].z, wq.q[6]) + dot4I8Packed(a[1].w, wq.q[7]);
  return xd.x * (wq.d.x * f32(s0) + wq.d.y * f32(s1)) + wq.m * xd.y;
}
`;

/** WGSL: the bytes of `v` (fields of `bits` bits, offset by 2^(bits-1)) as signed int8s (v - 2^(bits-1)). */
const signed = (v: string, bits: number) => {
  const sign = (1 << (bits - 1)) >>> 0;
  const mask = (sign * 0x01010101) >>> 0;
  const spread = 256 / sign - 2; // sign * spread = the byte's bits above the field's sign bit, and the sign bit
  return `sext(${v} ^ 0x${mask.toString(16)}u, 0x${mask.toString(16)}u, ${spread}u)`;
};
const SEXT = `fn sext(y: u32, sign: u32, spread: u32) -> u32 {
  return y | ((y & sign) * spread);
}
`;

/** The 4 bits of qh from bit s spread to bit 4 of each byte (q5_0 / q5_1 fifth bits). */
const SPREAD5 = `fn fifth(qh: u32, s: u32) -> u32 {
  let b = qh >> s;
  return ((b & 1u) << 4u) | ((b & 2u) << 11u) | ((b & 4u) << 18u) | ((b & 8u) << 25u);
}
`;

/** Blocks with an f16 d at byte 0 and `words` words of quants from byte 2 (q8_0, q4_0, q5_0): spliced as qChunk does. */
function scaledI8(bytes: number, words: number, body: string): string {
  return `${SEXT}${SPREAD5}const QB = ${bytes}u;
fn qChunkI8(row: u32, c: u32) -> QI8 {
  let o = row + c * QB;
  let a = (o + 2u) >> 2u;
  var u: array<u32, ${words + 1}>;
  for (var i = 0u; i < ${words + 1}u; i++) {
    u[i] = w[a + i];
  }
  var qw: array<u32, ${words}>;
  let s = select(16u, 0u, (o & 2u) != 0u); // bits to drop from each word: 0 when byte 2 is word aligned
  for (var j = 0u; j < ${words}u; j++) {
    qw[j] = select((u[j] >> 16u) | (u[j + 1u] << 16u), u[j], s == 0u);
  }
  let d = qHalf(o);
  var r: QI8;
  r.d = vec2<f32>(d, d);
${body}
  return r;
}
`;
}

/** Blocks with f16 d and m at byte 0 and `words` words after them (q4_1, q5_1: word-aligned blocks). */
function minI8(bytes: number, words: number, body: string): string {
  return `${SPREAD5}const QB = ${bytes}u;
fn qChunkI8(row: u32, c: u32) -> QI8 {
  let a = (row + c * QB) >> 2u;
  let dm = unpack2x16float(w[a]);
  var u: array<u32, ${words}>;
  for (var i = 0u; i < ${words}u; i++) {
    u[i] = w[a + 1u + i];
  }
  var r: QI8;
  r.d = vec2<f32>(dm.x, dm.x);
  r.m = dm.y;
${body}
  return r;
}
`;
}

const NIB = 0x0f0f0f0f;
/** Loop bodies: nibble word `n` gives quant words i (low nibbles) and i + 4 (high ones), plus fifth bits. */
const nib = (n: string, f: (v: string) => string, qh?: string) => `  for (var i = 0u; i < 4u; i++) {
    r.q[i] = ${f(`((${n} & 0x${NIB.toString(16)}u)${qh ? ` | fifth(${qh}, 4u * i)` : ''})`)};
    r.q[i + 4u] = ${f(`(((${n} >> 4u) & 0x${NIB.toString(16)}u)${qh ? ` | fifth(${qh}, 16u + 4u * i)` : ''})`)};
  }`;
const same = (v: string) => v;

export const I8_WGSL: Record<string, string> = {
  q8_0: scaledI8(34, 8, '  r.q = qw;'),
  q4_0: scaledI8(18, 4, nib('qw[i]', (v) => signed(v, 4))),
  q5_0: scaledI8(22, 5, nib('qw[i + 1u]', (v) => signed(v, 5), 'qw[0]')),
  q4_1: minI8(20, 4, nib('u[i]', same)),
  q5_1: minI8(24, 5, nib('u[i + 1u]', same, 'u[0]')),
};

/**
 * q4_k / q5_k (blocks of 144 / 176 bytes: multiples of 16, as are the rows, so every block starts at a vec4): read
 * as vec4<u32> through `w4` (binding 6 unless told, the weight buffer bound a second time): the header (d, dmin, 12 bytes of
 * scales) is one vec4, chunk k's nibbles (qs pair k / 2) two, q5_k's qh (bit k of each byte) two more. Chunk k is
 * sub-block k: scale d sc_k, minimum -dmin m_k.
 */
export function scaleMinI8(blockBytes: number, q5: boolean, w4Binding = 6): string {
  const qs = q5 ? 3 : 1; // first vec4 of qs in the block
  return `@group(0) @binding(${w4Binding}) var<storage, read> w4: array<vec4<u32>>;
const QB = ${blockBytes}u;
fn qChunkI8(row: u32, c: u32) -> QI8 {
  let a = (row + (c >> 3u) * QB) >> 4u;
  let k = c & 7u;
  let hd = w4[a];
  let dm = unpack2x16float(hd.x);
  let sh = (k & 3u) * 8u;
  let b0 = (hd.y >> sh) & 255u;
  let b1 = (hd.z >> sh) & 255u;
  let b2 = (hd.w >> sh) & 255u;
  let lo = k < 4u;
  let sc = select((b2 & 15u) | ((b0 >> 6u) << 4u), b0 & 63u, lo);
  let mn = select((b2 >> 4u) | ((b1 >> 6u) << 4u), b1 & 63u, lo);
  var r: QI8;
  let d = dm.x * f32(sc);
  r.d = vec2<f32>(d, d);
  r.m = -(dm.y * f32(mn));
  let q = a + ${qs}u + 2u * (k >> 1u);
  let ns = vec4<u32>((k & 1u) * 4u);
  var v0 = (w4[q] >> ns) & vec4<u32>(0x0f0f0f0fu);
  var v1 = (w4[q + 1u] >> ns) & vec4<u32>(0x0f0f0f0fu);${q5 ? `
  let kk = vec4<u32>(k);
  v0 |= ((w4[a + 1u] >> kk) & vec4<u32>(0x01010101u)) << vec4<u32>(4u);
  v1 |= ((w4[a + 2u] >> kk) & vec4<u32>(0x01010101u)) << vec4<u32>(4u);` : ''}
  r.q = array<u32, 8>(v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w);
  return r;
}
`;
}

/** q6_k (blocks of 210 bytes at even bytes): as its qChunk (runs of 32 bytes spliced from 9 words), signed q - 32. */
export const Q6_K_I8 = `${SEXT}const QB = 210u;
fn kSplice(lo: u32, hi: u32, s: u32) -> u32 {
  return (lo >> s) | ((hi << 16u) << (16u - s));
}
fn kBits16(e: u32) -> u32 {
  return (w[e >> 2u] >> ((e & 2u) * 8u)) & 0xffffu;
}
fn qChunkI8(row: u32, c: u32) -> QI8 {
  let o = row + (c >> 3u) * QB;
  let h = (c >> 2u) & 1u;
  let t = c & 3u;
  let al = (o + 64u * h + 32u * (t & 1u)) >> 2u;
  let ah = (o + 128u + 32u * h) >> 2u;
  let s = (o & 2u) * 8u;
  let sc = kBits16(o + 192u + 8u * h + 2u * t);
  let d = qHalf(o + 208u);
  var r: QI8;
  r.d = vec2<f32>(d * f32(bitcast<i32>(sc << 24u) >> 24u), d * f32(bitcast<i32>(sc << 16u) >> 24u));
  let ls = (t >> 1u) * 4u;
  let hs = 2u * t;
  var l0 = w[al];
  var h0 = w[ah];
  for (var i = 0u; i < 8u; i++) {
    let l1 = w[al + i + 1u];
    let h1 = w[ah + i + 1u];
    let v = ((kSplice(l0, l1, s) >> ls) & 0x0f0f0f0fu) | (((kSplice(h0, h1, s) >> hs) & 0x03030303u) << 4u);
    l0 = l1;
    h0 = h1;
    r.q[i] = ${signed('v', 6)};
  }
  return r;
}
`;

/**
 * iq4_xs (blocks of 136 bytes: whole words): chunk k is sub-block k, its indices the 4 words from a + 2 + 4 k, its
 * scale d (ls - 32) from the header word (d, scales_h) and word a + 1 (scales_l).
 */
const IQ4_XS_I8 = `${IQ4_LOOKUP_WGSL}const QB = 136u;
fn qChunkI8(row: u32, c: u32) -> QI8 {
  let a = (row + (c >> 3u) * QB) >> 2u;
  let k = c & 7u;
  let h = w[a];
  let ls = ((w[a + 1u] >> (4u * k)) & 15u) | (((h >> (16u + 2u * k)) & 3u) << 4u);
  let d = unpack2x16float(h).x * f32(i32(ls) - 32);
  var r: QI8;
  r.d = vec2<f32>(d, d);
  for (var i = 0u; i < 4u; i++) {
    let q = w[a + 2u + 4u * k + i];
    r.q[i] = iq4Bytes(iq4Nibbles(q, false));
    r.q[i + 4u] = iq4Bytes(iq4Nibbles(q, true));
  }
  return r;
}
`;

I8_WGSL.iq4_nl = IQ4_LOOKUP_WGSL + scaledI8(
  18,
  4,
  `  for (var i = 0u; i < 4u; i++) {
    r.q[i] = iq4Bytes(iq4Nibbles(qw[i], false));
    r.q[i + 4u] = iq4Bytes(iq4Nibbles(qw[i], true));
  }`,
);
I8_WGSL.iq4_xs = IQ4_XS_I8;
/** scaleMinI8's block bytes and q5 flag of q4_k and q5_k. */
const SCALE_MIN_I8: Record<string, [number, boolean]> = { q4_k: [144, false], q5_k: [176, true] };
for (const [format, [blockBytes, q5]] of Object.entries(SCALE_MIN_I8)) I8_WGSL[format] = scaleMinI8(blockBytes, q5);
I8_WGSL.q6_k = Q6_K_I8;

/**
 * The int8 reader of `format` with its `w4` (q4_k, q5_k: the weight as vec4s) at binding `w4Binding`; whether it
 * declares w4; undefined when the format has no reader.
 */
export function i8Reader(format: string, w4Binding: number): { wgsl: string; w4: boolean } | undefined {
  const scaleMin = SCALE_MIN_I8[format];
  if (scaleMin) return { wgsl: scaleMinI8(scaleMin[0], scaleMin[1], w4Binding), w4: true };
  const wgsl = I8_WGSL[format];
  return wgsl === undefined ? undefined : { wgsl, w4: false };
}
