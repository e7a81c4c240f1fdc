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
