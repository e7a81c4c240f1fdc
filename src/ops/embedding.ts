/** Row lookups: token (and learned position) embeddings, and gathering each sequence's last row. */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor, type Weight } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import embeddingSource from '../../shaders/embedding.wgsl';
import gatherSource from '../../shaders/gather_rows.wgsl';
import { expectTensor, grid, weightPrelude, wholeBuffer } from './common.js';

const EMBED_WG = 256;
const GATHER_WG = 256;

/**
 * embedding.wgsl, per table part: T tokens of H columns, the part's row stride, first row and row count,
 * accumulate (0 / 1: += into out), the multiplier.
 */
const EMBED_PARAMS = paramsStruct({ T: 'u32', H: 'u32', stride: 'u32', rowStart: 'u32', rows: 'u32', accumulate: 'u32', scale: 'f32' });
/** gather_rows.wgsl: S rows of H. */
const GATHER_PARAMS = paramsStruct({ S: 'u32', H: 'u32' });

/**
 * out[t, :] = table[ids[t], :] scale for t < T, or += with `accumulate` (learned position embeddings: ids =
 * positions + offset). Each part of the table serves the ids in its row range.
 *
 * @param ids    u32 [T]
 * @param table  [V, H]
 * @param out    f32 [T, H]
 * @param scale  the embedding multiplier, applied in f32 (Gemma: Math.fround(Math.sqrt(H)); Granite:
 *               embedding_multiplier); 1 leaves the rows exact
 * @example
 * embed(rec, inputIds, model.embedTokens, hidden, T);
 * embed(rec, inputIds, model.embedTokens, hidden, T, false, Math.sqrt(2304)); // Gemma 2 2B
 */
export function embed(rec: Recorder, ids: Tensor, table: Weight, out: Tensor, T: number, accumulate = false, scale = 1): void {
  if (T === 0) return;
  if (!Number.isFinite(scale)) throw new Error(`embed: scale ${scale} is not a finite number`);
  const { ctx } = rec;
  const H = table.cols;
  expectTensor(ids, 'u32', T, 'embed ids');
  expectTensor(out, 'f32', T * H, 'embed out');
  const key = `embedding.${table.dtype}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${threadLib}\n${embeddingSource}`,
    prelude: weightPrelude(table.dtype, 1),
    bindings: ['read', 'read', 'write'],
    params: EMBED_PARAMS,
    constants: { WG: EMBED_WG },
  }));
  const [gx, gy] = grid(ctx, Math.ceil((T * H) / EMBED_WG));
  const ib = bindTensor(ctx, ids);
  const ob = bindTensor(ctx, out);
  for (const part of table.parts) {
    if (part.rows === 0) continue;
    const params = { T, H, stride: table.rowStride, rowStart: part.rowStart, rows: part.rows, accumulate: accumulate ? 1 : 0, scale };
    rec.run(kernel, params, [ib, wholeBuffer(part.buffer), ob], gx, gy);
  }
}

/**
 * out[s, :] = x[rows[s], :] for s < S (the last token of each sequence, before the LM head).
 *
 * @param x     f32 [T, H]
 * @param rows  u32 [S]
 * @param out   f32 [S, H]
 * @example
 * gatherRows(rec, hidden, lastTokenRows, lastHidden, numSeqs, 2048);
 */
export function gatherRows(rec: Recorder, x: Tensor, rows: Tensor, out: Tensor, S: number, H: number): void {
  if (S === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', H, 'gatherRows x');
  expectTensor(rows, 'u32', S, 'gatherRows rows');
  expectTensor(out, 'f32', S * H, 'gatherRows out');
  const kernel = ctx.pipelines.kernel('gather_rows', () => ({
    name: 'gather_rows',
    code: `${threadLib}\n${gatherSource}`,
    bindings: ['read', 'read', 'write'],
    params: GATHER_PARAMS,
    constants: { WG: GATHER_WG },
  }));
  const [gx, gy] = grid(ctx, Math.ceil((S * H) / GATHER_WG));
  rec.run(kernel, { S, H }, [bindTensor(ctx, x), bindTensor(ctx, rows), bindTensor(ctx, out)], gx, gy);
}
