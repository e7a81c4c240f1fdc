/**
 * build/core.wasm (AssemblyScript, assembly/index.ts): the library's hot CPU loops. Instantiated once per realm
 * from bytes embedded by the bundler (tsup and vitest load `*.wasm` as a Uint8Array), so it works the same in
 * Node, browsers and edge runtimes. The TS facade owns every allocation through `alloc`/`free`.
 *
 * @example
 *   const core = await loadCore();
 *   const p = core.alloc(1024); core.u8().fill(0, p, p + 1024); core.free(p);
 */
import wasmBytes from '../../build/core.wasm';
import { instantiateWasm } from './modules.js';

/** The raw exports of core.wasm. Pointers and sizes are byte offsets/counts into `memory` (wasm32). */
export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  alloc(size: number): number;
  free(ptr: number): void;
  mergeTableInit(table: number, mask: number): void;
  mergeTableBuild(table: number, mask: number, triples: number, n: number, ranks: number): void;
  charTableInit(table: number, mask: number): void;
  charTableBuild(table: number, mask: number, pairs: number, n: number): void;
  bpeEncodeWords(
    model: number,
    mode: number,
    text: number,
    wordEnds: number,
    nWords: number,
    out: number,
    outEnds: number,
  ): number;
  vocabLookup(model: number, p: number, len: number): number;
  byteLevelDecode(src: number, ends: number, n: number, table: number, tableLen: number, dst: number): number;
  vocabTableInit(table: number, mask: number): void;
  vocabTableBuild(table: number, mask: number, blob: number, ends: number, n: number): void;
  resolveMerges(
    table: number,
    mask: number,
    blob: number,
    ends: number,
    ids: number,
    merges: number,
    mergeEnds: number,
    n: number,
    pairForm: number,
    out: number,
  ): number;
  countSingleChars(blob: number, ends: number, n: number): number;
  singleCharPairs(blob: number, ends: number, ids: number, n: number, out: number): number;
  utf16EndsToUtf8(blob: number, byteLen: number, ends: number, n: number): void;
}

/**
 * The largest block `alloc` hands out: AssemblyScript's TLSF serves blocks below 2^30 bytes (its BLOCK_MAXSIZE,
 * less the block header), and wasm32 memory tops out at 4 GiB anyway.
 */
export const MAX_ALLOC_BYTES = (1 << 30) - 4096;

/** The instantiated module plus views of its memory that follow `memory.grow` (which detaches old views). */
export class Core {
  private buffer: ArrayBuffer | undefined;
  private u8View = new Uint8Array(0);
  private i32View = new Int32Array(0);
  private u32View = new Uint32Array(0);
  private f32View = new Float32Array(0);

  constructor(readonly exports: CoreExports) {}

  /** Allocates `size` bytes (16-byte aligned). Views taken before this call may be detached after it. */
  alloc(size: number): number {
    // TLSF aborts on a block past its largest size class, and traps (unreachable) when memory.grow fails; both
    // would surface as opaque wasm errors. The first is refused here, before wasm sees it; the second happens
    // before TLSF changes any list, so the heap stays consistent and the trap becomes the same RangeError.
    if (!(size <= MAX_ALLOC_BYTES)) throw new RangeError(`core.wasm: allocation of ${size} bytes is too large (at most ${MAX_ALLOC_BYTES})`);
    let ptr: number;
    try {
      ptr = this.exports.alloc(Math.max(size, 1));
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) throw new RangeError(`core.wasm: out of memory allocating ${size} bytes`);
      throw err;
    }
    if (ptr === 0) throw new RangeError(`core.wasm: out of memory allocating ${size} bytes`);
    return ptr;
  }

  free(ptr: number): void {
    if (ptr !== 0) this.exports.free(ptr);
  }

  u8(): Uint8Array {
    this.refresh();
    return this.u8View;
  }

  i32(): Int32Array {
    this.refresh();
    return this.i32View;
  }

  u32(): Uint32Array {
    this.refresh();
    return this.u32View;
  }

  f32(): Float32Array {
    this.refresh();
    return this.f32View;
  }

  private refresh(): void {
    const buf = this.exports.memory.buffer;
    if (buf !== this.buffer) {
      this.buffer = buf;
      this.u8View = new Uint8Array(buf);
      this.i32View = new Int32Array(buf);
      this.u32View = new Uint32Array(buf);
      this.f32View = new Float32Array(buf);
    }
  }
}

let core: Promise<Core> | undefined;

/** Instantiates core.wasm on first use; later calls share the instance. */
export function loadCore(): Promise<Core> {
  core ??= instantiateWasm('core', wasmBytes, {
    env: {
      // AssemblyScript calls this on a failed assertion or trap-like condition (asserts are off in release).
      abort(_msg: number, _file: number, line: number, column: number): never {
        throw new Error(`core.wasm aborted at ${line}:${column}`);
      },
    },
  }).then(
    (exports) => new Core(exports as unknown as CoreExports),
    (e: unknown) => {
      core = undefined; // let a later call try again
      throw e;
    },
  );
  return core;
}
