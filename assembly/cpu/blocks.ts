// The weight formats' numbers and the helpers that read their blocks, shared by the f32-activation kernels
// (linear.ts) and the 8-bit-activation ones (linear-q8.ts). Block layouts are ggml's (src/layers/quant/formats/
// legacy.ts, k-quants.ts, iq4.ts state them byte by byte). Not exported from the module (index.ts).

export const FMT_F32: i32 = 0;
export const FMT_F16: i32 = 1;
export const FMT_Q8_0: i32 = 2;
export const FMT_Q4_0: i32 = 3;
export const FMT_Q4_K: i32 = 4;
export const FMT_IQ4_NL: i32 = 5;
export const FMT_IQ4_XS: i32 = 6;

/**
 * q4_0 and iq4_nl matrices (18-byte blocks of 32: f16 d, then 16 bytes of nibbles) are stored in groups of 4 rows,
 * as llama.cpp's CPU backend repacks them (block_q4_0x4), so that a 4-row GEMV pass reads one stream instead of 4
 * rows rb bytes apart. Of an N-row matrix at w (rb = rowBytes, the file's row size: the same bytes in all):
 * - rows 4i .. 4i + 3 (4i + 3 < N) lie in the 4 rb bytes at w + 4i rb, their block b as GROUP_BLOCK = 72 bytes at
 *   72 b: the 4 rows' f16 d (8 bytes), then the 4 rows' 16 nibble bytes each:  [d0 d1 d2 d3 | q0 | q1 | q2 | q3];
 * - q4_0's nibble bytes there are stored XOR 0x88: each nibble read as a signed 4-bit integer is q - 8 (the
 *   weight's integer, which the kernels then sign-extend by shifts instead of subtracting 8 sum x);
 * - the last N % 4 rows keep the file's layout (row n at w + n rb).
 * Example (K = 64, rb = 36): row 5 of a 10-row matrix has its block 1's d at w + 144 + 72 + 2 and nibbles at
 * w + 144 + 72 + 8 + 16; row 9's block 1 is the 18 bytes at w + 9 * 36 + 18. packRows (pack.ts, called by
 * CpuKernels.packRows, src/cpu/cpu-wasm.ts) turns the file's rows into this layout on load.
 */
export const GROUP_BLOCK: usize = 72;

/** Whether fmt's matrices are stored in groups of 4 rows (see GROUP_BLOCK). */
@inline export function grouped(fmt: i32): bool {
  return fmt == FMT_Q4_0 || fmt == FMT_IQ4_NL;
}

/** The f16 d of block b of row r (0..3) of the group at g. */
@inline export function groupScale(g: usize, b: i32, r: i32): usize {
  return g + <usize>b * GROUP_BLOCK + (<usize>r << 1);
}

/** The 16 nibble bytes of block b of row r (0..3) of the group at g. */
@inline export function groupNibbles(g: usize, b: i32, r: i32): usize {
  return g + <usize>b * GROUP_BLOCK + 8 + (<usize>r << 4);
}

/** Tokens from which the panel GEMM beats the per-token GEMV. */
export const GEMM_MIN_T: i32 = 4;

/** ggml's kvalues_iq4nl as int8 lanes: i8x16.swizzle(iq4Table(), indices) looks 16 of them up at once. */
@inline export function iq4Table(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/**
 * An f16 (bits h) as f32, exactly, without touching a subnormal f32 (x86 takes a slow microcode path on every
 * arithmetic op with a subnormal operand, and wasm cannot set flush-to-zero): normal values by rebiasing the
 * exponent in the integer domain (+112 << 23), subnormal ones as their integer mantissa times 2^-24.
 * Inf / NaN are not expected in weights.
 */
@inline export function halfToF32(h: u32): f32 {
  const m = h & 0x7fff;
  const mag = m < 0x400 ? <f32>m * reinterpret<f32>(0x33800000) : reinterpret<f32>((m << 13) + 0x38000000);
  return reinterpret<f32>(reinterpret<u32>(mag) | ((h & 0x8000) << 16));
}

@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** ggml's get_scale_min_k4: sub-block j's 6-bit scale (low 8 bits) and min (next 8) from the 12 bytes at s. */
@inline export function scaleMinK4(j: i32, s: usize): u32 {
  if (j < 4) return (<u32>load<u8>(s + j) & 63) | ((<u32>load<u8>(s + j + 4) & 63) << 8);
  const a = <u32>load<u8>(s + j + 4);
  const sc = (a & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
  const m = (a >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
  return sc | (m << 8);
}

/** iq4_xs sub-block j's scale ls - 32 (6 bits: 4 from scales_l at p + 4, 2 from scales_h at p + 2). */
@inline export function iq4xsScale(p: usize, j: i32): f32 {
  const lo = (<u32>load<u8>(p + 4 + (j >> 1)) >> (4 * (j & 1))) & 15;
  const hi = (<u32>load<u16>(p + 2) >> (2 * j)) & 3;
  return <f32>(<i32>(lo | (hi << 4)) - 32);
}

/** Four sums into out[0 .. 3] (added to what is there with acc). */
@inline export function store4(out: usize, s0: f32, s1: f32, s2: f32, s3: f32, acc: bool): void {
  if (acc) {
    s0 += load<f32>(out);
    s1 += load<f32>(out, 4);
    s2 += load<f32>(out, 8);
    s3 += load<f32>(out, 12);
  }
  store<f32>(out, s0);
  store<f32>(out, s1, 4);
  store<f32>(out, s2, 8);
  store<f32>(out, s3, 12);
}
