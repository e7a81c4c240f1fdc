// Weights into the layout the kernels read, once on load (src/cpu/cpu-weights.ts calls it through
// CpuKernels.packRows when a matrix's rows are all written): q4_0 and iq4_nl rows in groups of 4 (blocks.ts,
// GROUP_BLOCK). The other formats are read as a file holds them.

import { FMT_Q4_0, grouped, GROUP_BLOCK } from './blocks';
import { SCRATCH, SCRATCH_BYTES } from './scratch';

/**
 * Rearranges the N rows at w (rowBytes each, a multiple of 18: format fmt's blocks as a file holds them), in place,
 * into the layout the kernels read (blocks.ts, GROUP_BLOCK): q4_0 and iq4_nl rows 4i .. 4i + 3 as 72-byte blocks,
 * the 4 rows' f16 d then their 16 nibble bytes (q4_0's XOR 0x88), the last N % 4 rows as they are; other formats
 * untouched. Each group is copied whole into the static scratch (scratch.ts), then written back block by block.
 * False (nothing written) when a group of 4 rows is larger than the scratch (K > 32768).
 * Example (K = 64, rowBytes 36, N = 5): the 144 bytes of rows 0..3 become [d0 d1 d2 d3 | q0 q1 q2 q3] of block 0,
 * then of block 1; row 4 stays at w + 144.
 */
export function packRows(fmt: i32, w: usize, rowBytes: usize, N: i32): bool {
  if (!grouped(fmt)) return true;
  const groupBytes = rowBytes << 2;
  if (groupBytes > SCRATCH_BYTES) return false;
  const nb = <i32>(rowBytes / 18);
  const flip = i8x16.splat(<i8>(fmt == FMT_Q4_0 ? 0x88 : 0));
  const s = SCRATCH;
  for (let i = 0; i + 4 <= N; i += 4) {
    const g = w + <usize>i * rowBytes;
    memory.copy(s, g, groupBytes);
    // Row r's block b at s + r rowBytes + 18 b (f16 d, then 16 bytes of nibbles) to the group's block b at g + 72 b.
    let p = s;
    let o = g;
    for (let b = 0; b < nb; b++) {
      const p1 = p + rowBytes;
      const p2 = p1 + rowBytes;
      const p3 = p2 + rowBytes;
      store<u64>(o, <u64>load<u16>(p) | (<u64>load<u16>(p1) << 16) | (<u64>load<u16>(p2) << 32) | (<u64>load<u16>(p3) << 48));
      v128.store(o, v128.xor(v128.load(p, 2), flip), 8);
      v128.store(o, v128.xor(v128.load(p1, 2), flip), 24);
      v128.store(o, v128.xor(v128.load(p2, 2), flip), 40);
      v128.store(o, v128.xor(v128.load(p3, 2), flip), 56);
      p += 18;
      o += GROUP_BLOCK;
    }
  }
  return true;
}
