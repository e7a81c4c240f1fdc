// Reading llama.cpp blocks (src/layers/quant/formats/) from a weight bound as `w: array<u32>` (declared by the
// including kernel). Rows start 4-byte aligned and blocks have even sizes, so every block starts at an even byte o:
// a field of the block at an even byte offset is either word aligned or half a word off. The format's prelude
// (BlockFormat.wgsl) defines qChunk(row, c), the 32 dequantized values of a row's chunk c, using these helpers.

/** The f16 at even byte o. */
fn qHalf(o: u32) -> f32 {
  let h = unpack2x16float(w[o >> 2u]);
  return select(h.x, h.y, (o & 2u) != 0u);
}

/** The 4 bytes at even byte o as one little-endian word (two loads when o is half a word off). */
fn qWord(o: u32) -> u32 {
  let a = o >> 2u;
  if ((o & 2u) == 0u) {
    return w[a];
  }
  return (w[a] >> 16u) | (w[a + 1u] << 16u);
}

/** The byte at o. */
fn qByte(o: u32) -> u32 {
  return (w[o >> 2u] >> ((o & 3u) * 8u)) & 255u;
}

/**
 * Integer quants v - off as floats without an int -> float conversion (NVIDIA issues those at 1/8 of the FMA rate,
 * and a GEMV converts every weight): v (< 2^23) in the mantissa of 2^23, minus 2^23 + off. Exact for integer off
 * of at most 2^23 (v - off is then an integer the subtraction represents).
 */
fn qFloat(v: vec4<u32>, off: f32) -> vec4<f32> {
  return bitcast<vec4<f32>>(v | vec4<u32>(0x4B000000u)) - (8388608.0 + off);
}

/** Signed integers (|v| < 2^22) as floats, as qFloat: v in the mantissa of 1.5 * 2^23. */
fn qFloatSigned(v: vec4<i32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(v + vec4<i32>(0x4B400000)) - 12582912.0;
}
