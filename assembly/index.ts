// The single entry of build/core.wasm: hot CPU loops as free functions over linear memory.
// The TS facade (src/wasm/core.ts) owns every allocation through `alloc`/`free` below.
// Modules: memory.ts (allocator), bpe.ts + vocab.ts (tokenizer), sampler.ts (CPU sampler).

export { alloc, free } from './memory';
export {
  mergeTableInit,
  mergeTableBuild,
  charTableInit,
  charTableBuild,
  bpeEncodeWords,
  vocabLookup,
  byteLevelDecode,
} from './bpe';
export {
  vocabTableInit,
  vocabTableBuild,
  resolveMerges,
  countSingleChars,
  singleCharPairs,
  utf16EndsToUtf8,
} from './vocab';
export * from './sampler';
