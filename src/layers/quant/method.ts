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
import { quantEmbed, quantLinear, type QuantWeight } from './kernels.js';

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

/**
 * Allocates a [rows, cols] weight of `format` (contents undefined until written) in parts of whole rows, each
 * within one storage binding (or opts.maxPartBytes).
 *
 * @example
 * const w = createQuantWeight(ctx, 'q4_0', 64, 96, 'down', { maxPartBytes: 1024 }); // rows of 56 bytes, 4 parts
 */
export function createQuantWeight(ctx: GpuContext, format: QuantFormat, rows: number, cols: number, label: string, opts: QuantCreateOptions = {}): QuantLinearWeight {
  const method = quantMethod(format);
  checkBlockCols(format, cols, label);
  const rowStride = alignUp(rowBytes(format, cols), 4);
  const cap = Math.min(opts.maxPartBytes ?? Infinity, ctx.maxBinding, ctx.limits.maxBufferSize);
  const partRows = Math.floor(cap / rowStride);
  if (partRows < 1) throw new Error(`${label}: a ${format} row of ${rowStride} bytes exceeds one storage binding (${cap} bytes)`);
  const parts: QuantWeight['parts'] = [];
  for (let rowStart = 0; rowStart < rows || parts.length === 0; rowStart += partRows) {
    const n = Math.min(partRows, rows - rowStart);
    // Whole 16-byte words, and at least one: the kernels read up to a word past a block's last byte within its row.
    const size = Math.max(16, alignUp(n * rowStride, 16));
    parts.push({ buffer: ctx.device.createBuffer({ size, usage: STORAGE_USAGE, label: `${label}[${parts.length}]` }), rowStart, rows: n });
  }
  return { rows, cols, format, rowStride, parts, method };
}

/** Uploads rows rowStart.. given as rows of w.rowStride bytes (padded), splitting them across parts. */
function writePaddedRows(ctx: GpuContext, w: QuantLinearWeight, rowStart: number, data: Uint8Array): void {
  const rows = data.byteLength / w.rowStride;
  if (!Number.isInteger(rows) || rowStart < 0 || rowStart + rows > w.rows) {
    throw new Error(`${w.format} weight [${w.rows}, ${w.cols}]: cannot write ${data.byteLength / w.rowStride} rows at row ${rowStart}`);
  }
  for (const part of w.parts) {
    const lo = Math.max(rowStart, part.rowStart);
    const hi = Math.min(rowStart + rows, part.rowStart + part.rows);
    if (lo >= hi) continue;
    writeBuffer(ctx, part.buffer, (lo - part.rowStart) * w.rowStride, data.subarray((lo - rowStart) * w.rowStride, (hi - rowStart) * w.rowStride));
  }
}

function makeQuant(format: QuantFormat): QuantMethod {
  const method: QuantMethod = {
    name: format,
    create: (ctx, rows, cols, label) => createQuantWeight(ctx, format, rows, cols, label),
    writeRows(ctx, w, rowStart, data, src: FloatDtype) {
      const q = quant(w);
      const x = toF32(data, src);
      const rows = x.length / q.cols;
      if (!Number.isInteger(rows)) throw new Error(`${format} weight [${q.rows}, ${q.cols}]: ${x.length} values are not whole rows`);
      writePaddedRows(ctx, q, rowStart, quantizeRows(format, x, rows, q.cols, q.rowStride));
    },
    writeBlocks(ctx, w, rowStart, bytes) {
      const q = quant(w);
      const raw = rowBytes(format, q.cols);
      const rows = bytes.byteLength / raw;
      if (!Number.isInteger(rows)) throw new Error(`${format} weight [${q.rows}, ${q.cols}]: ${bytes.byteLength} bytes are not whole rows of ${raw}`);
      let padded = bytes;
      if (raw !== q.rowStride) {
        padded = new Uint8Array(rows * q.rowStride);
        for (let r = 0; r < rows; r++) padded.set(bytes.subarray(r * raw, (r + 1) * raw), r * q.rowStride);
      }
      writePaddedRows(ctx, q, rowStart, padded);
    },
    apply: (rec, x, w, bias, out, T, opts) => quantLinear(rec, x, quant(w), bias, out, T, opts),
    embed: (rec, ids, w, out, T, accumulate, scale) => quantEmbed(rec, ids, quant(w), out, T, accumulate, scale),
    bytes: (w) => quant(w).parts.reduce((n, p) => n + p.rows * quant(w).rowStride, 0),
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
