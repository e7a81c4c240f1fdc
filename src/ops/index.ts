/** The transformer's math on WebGPU: each op records dispatches into a {@link Recorder}. */
export { linear, linearReduce, type LinearOptions, type LinearResult, type RmsNormOut, type SplitSums } from './linear.js';
export { type RopeCacheWrite } from './linear-rope.js';
export { rmsNorm, layerNorm, qkNorm, postNormAdd } from './norm.js';
export {
  cacheKV,
  ropeCacheKV,
  pagedAttention,
  attentionTiling,
  attentionTiles,
  attentionTileCount,
  type AttentionMetadata,
  type AttentionOptions,
  type AttentionTiling,
  type QkvLayout,
} from './attention.js';
export { act, gatedAct, scaleSoftcap, type Activation } from './elementwise.js';
export { embed, gatherRows } from './embedding.js';
export { argmax } from './argmax.js';
export { tokenBitmask } from './token-bitmask.js';
export { fillRandom, fillConstant } from './fill.js';
export { topKCandidates, readCandidateRow, candidateRecordWords, MAX_CANDIDATES, type CandidateRow } from './topk.js';
export { createExpertWeights, writeExpertRows, moeRoute, moeGroup, moeGroupLayout, moeTileRows, maxTiles, fusedMoe, sharedExpertGate, type ExpertWeights, type MoeOptions } from './moe.js';
