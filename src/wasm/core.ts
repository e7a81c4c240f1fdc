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
import { abortImport, WasmHeap, type HeapExports } from './heap.js';
import { instantiateWasm } from './modules.js';

/** The raw exports of core.wasm. Pointers and sizes are byte offsets/counts into `memory` (wasm32). */
export interface CoreExports extends HeapExports {
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

/** The instantiated module plus views of its memory that follow `memory.grow` (which detaches old views). */
export class Core extends WasmHeap {
  constructor(readonly exports: CoreExports) {
    super(exports, 'core.wasm', 1);
  }
}

let core: Promise<Core> | undefined;

/** Instantiates core.wasm on first use; later calls share the instance. */
export function loadCore(): Promise<Core> {
  core ??= instantiateWasm('core', wasmBytes, {
    env: { abort: abortImport('core.wasm') },
  }).then(
    (exports) => new Core(exports as unknown as CoreExports),
    (e: unknown) => {
      core = undefined; // let a later call try again
      throw e;
    },
  );
  return core;
}
