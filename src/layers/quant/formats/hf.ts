/**
 * Block formats with an integer zero point, for Hugging Face checkpoints quantized asymmetrically (AWQ, GPTQ with
 * sym: false, compressed-tensors with symmetric: false): x = s (q - z) with an f16 scale s and an integer zero z per
 * group of columns. llama.cpp's q4_1 / q5_1 store the minimum -z s as an f16, which rounds it; these keep z whole, so
 * a group of 32 (or a multiple of 32) columns repacks exactly (loader/hf-quant.ts). They are not ggml types: no GGUF
 * file holds them, and their `ggmlType` is only the dtype name a WeightsReader gives such tensors.
 * - q4_zp (20 bytes): d (f16) at byte 0, z (u16, 0 .. 16: GPTQ's v1 zeros are stored minus one) at byte 2, then
 *   q4_0's 16 bytes of nibbles (byte j: element j low, element 16 + j high); x = d (q - z).
 * - q8_zp (36 bytes): d, z (u16, 0 .. 256), then 32 unsigned bytes q; x = d (q - z).
 * q - z has at most 9 bits and d 11, so d (q - z) is exact in f32 (on the CPU and in WGSL alike). Both sizes are
 * multiples of 4: every block starts word aligned, and the header is one word (d low, z high).
 */
import { f16BitsToF32 } from '../../../loader/convert.js';
import type { BlockFormat } from '../format.js';
import { roundf, toF16Bits } from './common.js';

const QK = 32;

function zpBlockWgsl(bytes: number, words: number, body: string): string {
  return `const QB = ${bytes}u;
fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let a = (row + c * QB) >> 2u;
  let h = w[a];
  let d = unpack2x16float(h).x;
  let z = f32(h >> 16u);
  var u: array<u32, ${words}>;
  for (var i = 0u; i < ${words}u; i++) {
    u[i] = w[a + 1u + i];
  }
  var r: array<vec4<f32>, 8>;
${body}
  return r;
}
`;
}

function readHeader(bytes: Uint8Array, o: number): [number, number] {
  return [f16BitsToF32(bytes[o] | (bytes[o + 1] << 8)), bytes[o + 2] | (bytes[o + 3] << 8)];
}

/**
 * Our reference quantizer (no ggml counterpart; used when a float checkpoint is quantized to these formats on load,
 * and by the kernel tests): the range [min(x, 0), max(x, 0)] in `levels` steps, d = (max - min) / levels rounded to
 * f16, z = roundf(-min / d), q = clamp(roundf(x / d) + z, 0, levels), all in f32.
 */
function quantizeZp(x: Float32Array, at: number, levels: number): { d: number; z: number; q: Int32Array } {
  const f = Math.fround;
  let min = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    min = Math.min(min, x[at + j]);
    max = Math.max(max, x[at + j]);
  }
  const h = toF16Bits(f(f(max - min) / levels));
  const d = f16BitsToF32(h);
  const id = d !== 0 ? f(1 / d) : 0;
  const z = Math.min(levels, Math.max(0, roundf(f(-min * id))));
  const q = new Int32Array(QK);
  for (let j = 0; j < QK; j++) q[j] = Math.min(levels, Math.max(0, roundf(f(x[at + j] * id)) + z));
  return { d: h, z, q };
}

function putHeader(out: Uint8Array, o: number, h: number, z: number): void {
  out[o] = h & 0xff;
  out[o + 1] = h >> 8;
  out[o + 2] = z & 0xff;
  out[o + 3] = z >> 8;
}

export const q4_zp: BlockFormat = {
  name: 'q4_zp',
  ggmlType: 'Q4_ZP',
  blockElems: QK,
  blockBytes: 20,
  wgsl: zpBlockWgsl(
    20,
    4,
    `  for (var i = 0u; i < 4u; i++) {
    let v = vec4<u32>(u[i]) >> vec4<u32>(0u, 8u, 16u, 24u);
    r[i] = d * qFloat(v & vec4<u32>(15u), z);
    r[i + 4u] = d * qFloat((v >> vec4<u32>(4u)) & vec4<u32>(15u), z);
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const [d, z] = readHeader(bytes, o);
    for (let j = 0; j < QK / 2; j++) {
      const b = bytes[o + 4 + j];
      out[at + j] = d * ((b & 15) - z);
      out[at + QK / 2 + j] = d * ((b >> 4) - z);
    }
  },
  quantizeBlock(x, at, out, o) {
    const { d, z, q } = quantizeZp(x, at, 15);
    putHeader(out, o, d, z);
    for (let j = 0; j < QK / 2; j++) out[o + 4 + j] = q[j] | (q[QK / 2 + j] << 4);
  },
};

export const q8_zp: BlockFormat = {
  name: 'q8_zp',
  ggmlType: 'Q8_ZP',
  blockElems: QK,
  blockBytes: 36,
  wgsl: zpBlockWgsl(
    36,
    8,
    `  for (var i = 0u; i < 8u; i++) {
    let v = (vec4<u32>(u[i]) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u);
    r[i] = d * qFloat(v, z);
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const [d, z] = readHeader(bytes, o);
    for (let j = 0; j < QK; j++) out[at + j] = d * (bytes[o + 4 + j] - z);
  },
  quantizeBlock(x, at, out, o) {
    const { d, z, q } = quantizeZp(x, at, 255);
    putHeader(out, o, d, z);
    for (let j = 0; j < QK; j++) out[o + 4 + j] = q[j];
  },
};

/** This file's formats, by name (not llama.cpp's: the gguf-py reference tests leave them out). */
export const HF_FORMATS = { q4_zp, q8_zp } satisfies Record<string, BlockFormat>;
