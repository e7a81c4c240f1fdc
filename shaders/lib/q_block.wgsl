// Reading llama.cpp blocks (q8_0, q4_0; see src/layers/quant/blocks.ts) from a weight bound as `w: array<u32>`
// (declared by the including kernel). Blocks are 34 or 18 bytes and rows start 4-byte aligned, so a block starts
// at an even byte o: its f16 scale is one half of word o / 4, and its quants start at byte o + 2, word aligned when
// o % 4 == 2 and half a word off when o % 4 == 0 (then quant word j is (w[a + j] >> 16) | (w[a + j + 1] << 16),
// a = (o + 2) / 4). The format's prelude (src/layers/quant/kernels.ts) defines QB (bytes per block) and qBlock(o),
// the block's 32 unscaled values, loading each word of the block once.

/** The block's scale d: the f16 at byte o. */
fn qScale(o: u32) -> f32 {
  let h = unpack2x16float(w[o >> 2u]);
  return select(h.x, h.y, (o & 2u) != 0u);
}
