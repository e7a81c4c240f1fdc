/**
 * The records that cross the scheduler's seams (vLLM V1's `sched/output.py` and `engine/__init__.py`):
 * schedule() -> SchedulerOutput -> model runner; model runner's sampled ids -> updateFromOutput() -> EngineCoreOutputs.
 * Plain data only, so the runner never reads scheduler or KV-cache internals.
 */
import type { BlockCopy, BlockIds } from './kv-cache-manager.js';
import type { FinishReason } from './request.js';

/** One request's share of a step. */
export interface ScheduledRequest {
  requestId: string;
  /** Tokens to run through the model this step: allTokenIds[startPosition, startPosition + tokenIds.length). */
  tokenIds: readonly number[];
  /** Position of tokenIds[0] in the sequence (= tokens already in the KV cache, prefix hits included). */
  startPosition: number;
  /** The request's whole block table; token at position p is in slot table[floor(p / B)] * B + p % B. */
  blockTable: BlockIds;
  /**
   * True when this chunk ends at the last known token (the last prompt chunk, or a decode step): sample one token
   * from the logits of the chunk's last position. False for an earlier prompt chunk: compute KV only.
   */
  needsSample: boolean;
  /**
   * Speculative decoding: the draft tokens at the end of tokenIds (tokenIds = [last sampled token, ...drafts]).
   * The runner returns the target's verdict at each of the 1 + k last positions; updateFromOutput then takes
   * 1 .. k + 1 tokens and rolls numComputedTokens back past the rejected drafts. Absent or empty: none.
   */
  specTokenIds?: readonly number[];
}

/** What one engine step must compute: enough to build a flat batch (ids, positions, slot mapping, block tables). */
export interface SchedulerOutput {
  /**
   * Batch order: running requests (those with one token left first, then chunks of longer ones), then requests
   * admitted from the waiting queue (new or resumed after preemption). Each request appears at most once.
   */
  scheduledRequests: ScheduledRequest[];
  /** Sum of tokenIds.length over scheduledRequests; never above maxNumBatchedTokens. */
  totalNumScheduledTokens: number;
  /** Requests preempted by this schedule(): their KV blocks are gone; they will be recomputed from scratch. */
  preemptedRequestIds: string[];
  /** Requests that finished (stopped, length-capped or aborted) since the previous schedule(): drop their state. */
  finishedRequestIds: string[];
  /** Copy-on-write block copies, [src, dst]; run them in order before the forward pass. */
  blockCopies: BlockCopy[];
}

/** What a step produced for one request. */
export interface EngineCoreOutput {
  requestId: string;
  /** Token ids appended to the request this step (usually one). */
  newTokenIds: number[];
  /** 'stop' | 'length' when the request finished this step, else null. */
  finishReason: FinishReason | null;
  /** The stop token id that ended it; null for EOS, length, or while running. */
  stopReason: number | string | null;
  /** Prompt tokens that were served from the prefix cache. */
  numCachedTokens: number;
}

/** Scheduler counters after a step (vLLM's SchedulerStats). */
export interface SchedulerStats {
  numRunning: number;
  numWaiting: number;
  /** Fraction of KV blocks held by requests, 0..1. */
  kvCacheUsage: number;
  /** Prompt tokens looked up in the prefix cache (first lookup per request). */
  prefixCacheQueries: number;
  /** Of those, tokens found. */
  prefixCacheHits: number;
  /** hits / queries, 0 before any query. */
  prefixCacheHitRate: number;
  /** Preemptions since the scheduler was created. */
  numPreemptions: number;
  /** Speculative decoding counters since the scheduler was created (vLLM's SpecDecodingStats); null when off. */
  specDecoding: SpecDecodingStats | null;
}

/** Speculative decoding counters (vLLM's vllm:spec_decode_* metrics). */
export interface SpecDecodingStats {
  /** Verification steps of a request with at least one draft token. */
  numDrafts: number;
  /** Draft tokens verified. */
  numDraftTokens: number;
  /** Of those, accepted. */
  numAcceptedTokens: number;
  /** Accepted drafts by position in the draft (index 0: the first draft token). */
  numAcceptedTokensPerPos: number[];
  /** numAcceptedTokens / numDraftTokens (0 before any draft). */
  acceptanceRate: number;
}

/** Result of updateFromOutput. */
export interface EngineCoreOutputs {
  /** One entry per request that received tokens this step, in batch order. */
  outputs: EngineCoreOutput[];
  stats: SchedulerStats;
}
