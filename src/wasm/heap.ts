/**
 * The heap of one of the library's AssemblyScript modules (core.wasm, cpu.wasm): allocation through its `alloc`
 * (core.wasm: TLSF, with `free`; cpu.wasm: a bump pointer that never frees, assembly/cpu/heap.ts) that reports
 * out-of-memory as a RangeError naming the module, and views of its memory that follow `memory.grow` (which
 * detaches old views). Core (core.ts) and CpuKernels (src/cpu/cpu-wasm.ts) extend it.
 *
 * @example
 *   class Mine extends WasmHeap { constructor(x: HeapExports) { super(x, 'mine.wasm', 1); } }
 *   const p = mine.alloc(64); mine.f32().fill(1, p / 4, p / 4 + 16); mine.free(p);
 */

/** What every such module exports: its memory, and an allocator over it (`free`: where blocks can be given back). */
export interface HeapExports {
  readonly memory: WebAssembly.Memory;
  alloc(size: number): number;
  free?(ptr: number): void;
}

/**
 * The largest block `alloc` hands out: AssemblyScript's TLSF serves blocks below 2^30 bytes (its BLOCK_MAXSIZE,
 * less the block header), and wasm32 memory tops out at 4 GiB anyway.
 */
export const MAX_ALLOC_BYTES = (1 << 30) - 4096;

/** AssemblyScript's `env.abort` import for module `name` (called on a failed assertion; asserts are off in release). */
export const abortImport =
  (name: string) =>
  (_msg: number, _file: number, line: number, column: number): never => {
    throw new Error(`${name} aborted at ${line}:${column}`);
  };

export class WasmHeap {
  /** Views of the memory's buffer; memory.grow replaces the buffer (detaching them), so current() makes new ones. */
  private views = { buffer: null as ArrayBuffer | null, u8: new Uint8Array(0), i32: new Int32Array(0), u32: new Uint32Array(0), f32: new Float32Array(0) };

  /**
   * @param heap the module's exports
   * @param name the module's file name, for errors
   * @param minBlock the smallest size asked of `alloc` (a request for less gets this many bytes)
   * @param trapHint appended to the out-of-memory error when growing memory trapped
   */
  constructor(
    private readonly heap: HeapExports,
    private readonly name: string,
    private readonly minBlock: number,
    private readonly trapHint = '',
  ) {}

  /** Allocates `size` bytes (16-byte aligned). Views taken before this call may be detached after it. */
  alloc(size: number): number {
    // TLSF aborts on a block past its largest size class, and traps (unreachable) when memory.grow fails; both
    // would surface as opaque wasm errors. The first is refused here, before wasm sees it; the second happens
    // before TLSF changes any list, so the heap stays consistent and the trap becomes the same RangeError.
    if (!(size <= MAX_ALLOC_BYTES)) throw new RangeError(`${this.name}: allocation of ${size} bytes is too large (at most ${MAX_ALLOC_BYTES})`);
    let ptr: number;
    try {
      ptr = this.heap.alloc(Math.max(size, this.minBlock));
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) throw new RangeError(`${this.name}: out of memory allocating ${size} bytes${this.trapHint}`);
      throw err;
    }
    if (ptr === 0) throw new RangeError(`${this.name}: out of memory allocating ${size} bytes`);
    return ptr;
  }

  /** Gives a block back; a module without `free` (cpu.wasm) keeps every block until the instance goes. */
  free(ptr: number): void {
    if (!this.heap.free) throw new Error(`${this.name} does not free blocks: its memory goes with its instance`);
    if (ptr !== 0) this.heap.free(ptr);
  }

  u8(): Uint8Array {
    return this.current().u8;
  }

  i32(): Int32Array {
    return this.current().i32;
  }

  u32(): Uint32Array {
    return this.current().u32;
  }

  f32(): Float32Array {
    return this.current().f32;
  }

  private current() {
    const buf = this.heap.memory.buffer;
    if (buf !== this.views.buffer) this.views = { buffer: buf, u8: new Uint8Array(buf), i32: new Int32Array(buf), u32: new Uint32Array(buf), f32: new Float32Array(buf) };
    return this.views;
  }
}
