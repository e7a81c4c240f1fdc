/**
 * LinearMethods for llama.cpp's block formats (formats/: vLLM's `quantization` option, GGUF's tensor types):
 * weights are stored packed on the GPU (never expanded), filled either from float checkpoint rows, quantized on the
 * CPU in flight by llama.cpp's reference rules (formats with a quantizeBlock), or from rows of raw blocks
 * (writeBlocks, for GGUF files).
 */
import { alignUp, STORAGE_USAGE, writeBuffer } from '../../gpu/buffers.js';
import type { GpuContext } from '../../gpu/context.js';
import { toF32, type FloatDtype } from '../../loader/convert.js';
import type { LinearMethod, LinearWeight } from '../linear.js';
import { checkBlockCols, quantizeRows, rowBytes } from './blocks.js';
import { QUANT_FORMATS, type QuantFormat } from './formats/index.js';
import { quantEmbed, quantLinear, type QuantPart, type QuantWeight } from './kernels.js';

/** A LinearMethod that also takes rows of raw blocks. */
export interface QuantMethod extends LinearMethod {
  readonly name: QuantFormat;
  /**
   * Fills rows rowStart.. from rows of raw blocks as GGUF stores them: each row's blocks back to back (no
   * padding), `bytes` holding whole rows.
   */
  writeBlocks(ctx: GpuContext, w: LinearWeight, rowStart: number, bytes: Uint8Array): void;
}

export interface QuantLinearWeight extends QuantWeight, LinearWeight {}

const quant = (w: LinearWeight): QuantLinearWeight => w as QuantLinearWeight;

/** Options for tests: an upper bound on a part's bytes (forces weights into several parts). */
export interface QuantCreateOptions {
  maxPartBytes?: number;
}

/** Rows of one format in a weight: a fused weight's tensors in their file's formats, top to bottom. */
export interface QuantSegment {
  format: QuantFormat;
  rows: number;
}

/**
 * Allocates a [rows, cols] weight (contents undefined until written) of one format, or of segments of rows in
 * formats of their own, in parts of whole rows of one format, each within one storage binding (or
 * opts.maxPartBytes). Its method is the first segment's format's (any QuantMethod serves any QuantWeight).
 *
 * @example
 * const w = createQuantWeight(ctx, 'q4_0', 64, 96, 'down', { maxPartBytes: 1024 }); // rows of 56 bytes, 4 parts
 * const qkv = createQuantWeight(ctx, [{ format: 'q4_k', rows: 2560 }, { format: 'q6_k', rows: 512 }], 3072, 2048, 'qkv');
 */
export function createQuantWeight(
  ctx: GpuContext,
  layout: QuantFormat | readonly QuantSegment[],
  rows: number,
  cols: number,
  label: string,
  opts: QuantCreateOptions = {},
): QuantLinearWeight {
  const segments = typeof layout === 'string' ? [{ format: layout, rows }] : layout;
  if (segments.length === 0 || segments.reduce((n, s) => n + s.rows, 0) !== rows) {
    throw new Error(`${label}: segments of ${segments.map((s) => s.rows).join(' + ')} rows for a weight of ${rows}`);
  }
  const cap = Math.min(opts.maxPartBytes ?? Infinity, ctx.maxBinding, ctx.limits.maxBufferSize);
  const parts: QuantPart[] = [];
  let at = 0;
  for (const { format, rows: segRows } of segments) {
    checkBlockCols(format, cols, label);
    const rowStride = alignUp(rowBytes(format, cols), 4);
    const partRows = Math.floor(cap / rowStride);
    if (partRows < 1) throw new Error(`${label}: a ${format} row of ${rowStride} bytes exceeds one storage binding (${cap} bytes)`);
    for (let r = 0; r < segRows; r += partRows) {
      const n = Math.min(partRows, segRows - r);
      // Whole 16-byte words: the kernels read up to a word past a block's last byte within its row.
      const size = alignUp(n * rowStride, 16);
      parts.push({ buffer: ctx.device.createBuffer({ size, usage: STORAGE_USAGE, label: `${label}[${parts.length}]` }), rowStart: at + r, rows: n, format, rowStride });
    }
    at += segRows;
  }
  return { rows, cols, parts, method: quantMethod(segments[0].format) };
}

/**
 * Calls `write(part, lo, hi)` for the parts holding rows rowStart .. rowStart + rows - 1 (lo .. hi - 1 of them in
 * that part), after checking that the rows exist.
 */
function forParts(w: QuantLinearWeight, rowStart: number, rows: number, write: (part: QuantPart, lo: number, hi: number) => void): void {
  if (!Number.isInteger(rows) || rowStart < 0 || rowStart + rows > w.rows) {
    throw new Error(`quantized weight [${w.rows}, ${w.cols}]: cannot write ${rows} rows at row ${rowStart}`);
  }
  for (const part of w.parts) {
    const lo = Math.max(rowStart, part.rowStart);
    const hi = Math.min(rowStart + rows, part.rowStart + part.rows);
    if (lo < hi) write(part, lo, hi);
  }
}

/** The format of rows rowStart .. rowStart + rows - 1, which must be one (throws naming the formats met). */
function formatOfRows(w: QuantLinearWeight, rowStart: number, rows: number): QuantFormat {
  const formats = new Set<QuantFormat>();
  forParts(w, rowStart, rows, (part) => formats.add(part.format));
  if (formats.size !== 1) throw new Error(`quantized weight [${w.rows}, ${w.cols}]: rows ${rowStart}..${rowStart + rows - 1} span formats ${[...formats].join(', ')}`);
  return [...formats][0];
}

function makeQuant(format: QuantFormat): QuantMethod {
  const method: QuantMethod = {
    name: format,
    create: (ctx, rows, cols, label) => createQuantWeight(ctx, format, rows, cols, label),
    writeRows(ctx, w, rowStart, data, src: FloatDtype) {
      const q = quant(w);
      const x = toF32(data, src);
      const rows = x.length / q.cols;
      if (!Number.isInteger(rows)) throw new Error(`quantized weight [${q.rows}, ${q.cols}]: ${x.length} values are not whole rows`);
      forParts(q, rowStart, rows, (part, lo, hi) => {
        const bytes = quantizeRows(part.format, x.subarray((lo - rowStart) * q.cols, (hi - rowStart) * q.cols), hi - lo, q.cols, part.rowStride);
        writeBuffer(ctx, part.buffer, (lo - part.rowStart) * part.rowStride, bytes);
      });
    },
    writeBlocks(ctx, w, rowStart, bytes) {
      const q = quant(w);
      const f = formatOfRows(q, rowStart, 1);
      const raw = rowBytes(f, q.cols);
      const rows = bytes.byteLength / raw;
      if (!Number.isInteger(rows)) throw new Error(`${f} weight [${q.rows}, ${q.cols}]: ${bytes.byteLength} bytes are not whole rows of ${raw}`);
      formatOfRows(q, rowStart, rows);
      forParts(q, rowStart, rows, (part, lo, hi) => {
        let padded = bytes.subarray((lo - rowStart) * raw, (hi - rowStart) * raw);
        if (raw !== part.rowStride) {
          const src = padded;
          padded = new Uint8Array((hi - lo) * part.rowStride);
          for (let r = 0; r < hi - lo; r++) padded.set(src.subarray(r * raw, (r + 1) * raw), r * part.rowStride);
        }
        writeBuffer(ctx, part.buffer, (lo - part.rowStart) * part.rowStride, padded);
      });
    },
    apply: (rec, x, w, bias, out, T, opts) => quantLinear(rec, x, quant(w), bias, out, T, opts),
    embed: (rec, ids, w, out, T, accumulate, scale) => quantEmbed(rec, ids, quant(w), out, T, accumulate, scale),
    bytes: (w) => quant(w).parts.reduce((n, p) => n + p.rows * p.rowStride, 0),
    destroy: (w) => {
      for (const p of quant(w).parts) p.buffer.destroy();
    },
  };
  return method;
}

const METHODS = Object.fromEntries(QUANT_FORMATS.map((f) => [f, makeQuant(f)])) as Record<QuantFormat, QuantMethod>;


/**
 * The LinearMethod storing weights in `format`.
 *
 * @example
 * const w = quantMethod('q8_0').create(ctx, 256, 128, 'down'); // 256 rows of 4 blocks: 136 bytes a row
 */
export function quantMethod(format: QuantFormat): QuantMethod {
  const m = METHODS[format];
  if (!m) throw new Error(`unknown quantization format '${String(format)}' (known: ${QUANT_FORMATS.join(', ')})`);
  return m;
}
