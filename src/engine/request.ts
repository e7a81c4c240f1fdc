/**
 * A request as the engine core sees it (vLLM V1's `vllm/v1/request.py`): token ids, how many of them have KV in the
 * cache (`numComputedTokens`), status and the stop conditions. No prefill/decode phase: a request is "prefilling"
 * exactly while `numComputedTokens < numTokens - 1`, and the scheduler needs nothing more.
 *
 * @example
 * const req = new Request({
 *   requestId: 'r0', promptTokenIds: [1, 15, 27], eosTokenIds: [2],
 *   samplingParams: { maxTokens: 16, minTokens: 0, ignoreEos: false, stopTokenIds: [] },
 * });
 * req.numTokens; // 3
 */
import type { RepetitionDetection } from './repetition.js';
import { InvalidArgumentError } from '../errors.js';

/** Where a request is in its life. Finished statuses are terminal. */
export enum RequestStatus {
  WAITING = 'waiting',
  RUNNING = 'running',
  /** Evicted from the running set to free KV blocks; waits to be recomputed from its tokens so far. */
  PREEMPTED = 'preempted',
  /** EOS or a stop token (or a stop string, set by the engine). */
  FINISHED_STOPPED = 'finished_stopped',
  /** maxTokens reached, or the sequence reached maxModelLen. */
  FINISHED_LENGTH_CAPPED = 'finished_length_capped',
  FINISHED_ABORTED = 'finished_aborted',
  /** The output ended in a repeated pattern (repetitionDetection). */
  FINISHED_REPETITION = 'finished_repetition',
}

/** vLLM's finish reasons as they appear in outputs. */
export type FinishReason = 'stop' | 'length' | 'abort' | 'repetition';

/** True for the three terminal statuses. */
export function isFinishedStatus(status: RequestStatus): boolean {
  return (
    status === RequestStatus.FINISHED_STOPPED ||
    status === RequestStatus.FINISHED_LENGTH_CAPPED ||
    status === RequestStatus.FINISHED_ABORTED ||
    status === RequestStatus.FINISHED_REPETITION
  );
}

/** The finish reason a status reports: 'stop' | 'length' | 'abort', or null while unfinished. */
export function finishReasonOf(status: RequestStatus): FinishReason | null {
  if (status === RequestStatus.FINISHED_STOPPED) return 'stop';
  if (status === RequestStatus.FINISHED_LENGTH_CAPPED) return 'length';
  if (status === RequestStatus.FINISHED_ABORTED) return 'abort';
  if (status === RequestStatus.FINISHED_REPETITION) return 'repetition';
  return null;
}

/** The subset of SamplingParams the scheduler's stop check needs. */
export interface StopParams {
  /** At most this many output tokens (Infinity: until maxModelLen). */
  maxTokens: number;
  /** EOS and stop tokens do not end the request before this many output tokens. */
  minTokens: number;
  ignoreEos: boolean;
  /** Extra tokens that end the request; the token is reported as `stopReason`. */
  stopTokenIds: readonly number[];
  /** The model's EOS ids; empty when ignoreEos. An EOS stop reports `stopReason` null. */
  eosTokenIds: readonly number[];
  /** vLLM's repetition_detection: the output ending in a repeated pattern ends the request. */
  repetitionDetection?: RepetitionDetection | null;
}

/** The stop fields of a SamplingParams (a SamplingParams instance fits as is). `maxTokens: null` = no limit. */
export interface StopParamsInit {
  maxTokens: number | null;
  minTokens?: number;
  ignoreEos?: boolean;
  stopTokenIds?: readonly number[];
  repetitionDetection?: RepetitionDetection | null;
}

/** Constructor argument of Request. */
export interface RequestInit {
  requestId: string;
  promptTokenIds: readonly number[];
  samplingParams: StopParamsInit;
  /** The model's end-of-sequence ids (generation_config's `eos_token_id` may list several). */
  eosTokenIds: readonly number[];
  /** Lower values are scheduled first under the 'priority' policy (vLLM's convention). Default 0. */
  priority?: number;
  /** Milliseconds on performance.now()'s clock; breaks priority ties (earlier first). Default: now. */
  arrivalTime?: number;
}

const isTokenId = (t: unknown): boolean => typeof t === 'number' && Number.isInteger(t) && t >= 0 && t < 2 ** 32;

function check(ok: boolean, field: string, message: string): void {
  if (!ok) throw new InvalidArgumentError(field, `${field} ${message}`);
}

/** One generation request: prompt, outputs so far, progress through the KV cache and status. */
export class Request {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly params: StopParams;
  readonly priority: number;
  readonly arrivalTime: number;
  status = RequestStatus.WAITING;
  /** The stop token id (or stop string) that ended the request; null for EOS, length and abort. */
  stopReason: number | string | null = null;
  /** Leading tokens whose KV is in the cache (or is being computed by the step just scheduled). */
  numComputedTokens = 0;
  /** Prompt tokens served from the prefix cache when the request was first scheduled. */
  numCachedTokens = 0;
  numPreemptions = 0;
  /**
   * Tokens sampled by a step still in flight and not yet appended (async scheduling): the next step already
   * computes from them, their ids taken on the GPU (Scheduler.markPlaceholders).
   */
  numPlaceholders = 0;
  /**
   * Speculative decoding: draft tokens proposed after the last sampled one, to be verified by the next step
   * (vLLM's spec_token_ids). Never part of allTokenIds; cleared when scheduled or preempted.
   */
  specTokenIds: number[] = [];
  readonly #outputTokenIds: number[] = [];
  // prompt ++ outputs, kept as one array so slices for the model need no concatenation.
  readonly #allTokenIds: number[];

  constructor(init: RequestInit) {
    const { requestId, promptTokenIds, samplingParams: sp, eosTokenIds } = init;
    check(typeof requestId === 'string', 'requestId', `must be a string, got ${typeof requestId}.`);
    check(Array.isArray(promptTokenIds) && promptTokenIds.length > 0, 'promptTokenIds', 'must contain at least one token id.');
    const badPrompt = promptTokenIds.findIndex((t) => !isTokenId(t));
    check(badPrompt < 0, 'promptTokenIds', `must hold non-negative integer token ids; index ${badPrompt} is ${promptTokenIds[badPrompt]}.`);
    const maxTokens = sp.maxTokens ?? Infinity;
    check(maxTokens === Infinity || (Number.isInteger(maxTokens) && maxTokens >= 1), 'maxTokens', `must be at least 1, got ${maxTokens}.`);
    const minTokens = sp.minTokens ?? 0;
    check(Number.isInteger(minTokens) && minTokens >= 0 && minTokens <= maxTokens, 'minTokens', `must be an integer in [0, maxTokens=${maxTokens}], got ${minTokens}.`);
    const stopTokenIds = sp.stopTokenIds ?? [];
    check(stopTokenIds.every(isTokenId), 'stopTokenIds', 'must be a list of non-negative integer token ids.');
    check(eosTokenIds.every(isTokenId), 'eosTokenIds', 'must be a list of non-negative integer token ids.');
    const priority = init.priority ?? 0;
    check(Number.isFinite(priority), 'priority', `must be a finite number, got ${priority}.`);
    const ignoreEos = sp.ignoreEos ?? false;

    this.requestId = requestId;
    this.promptTokenIds = promptTokenIds.slice();
    this.#allTokenIds = promptTokenIds.slice();
    this.params = {
      maxTokens,
      minTokens,
      ignoreEos,
      stopTokenIds: stopTokenIds.slice(),
      eosTokenIds: ignoreEos ? [] : eosTokenIds.slice(),
      repetitionDetection: sp.repetitionDetection ?? null,
    };
    this.priority = priority;
    this.arrivalTime = init.arrivalTime ?? performance.now();
  }

  /** Generated token ids so far (a live view: do not mutate). */
  get outputTokenIds(): readonly number[] {
    return this.#outputTokenIds;
  }

  /** Prompt followed by outputs (a live view: do not mutate). */
  get allTokenIds(): readonly number[] {
    return this.#allTokenIds;
  }

  get numPromptTokens(): number {
    return this.promptTokenIds.length;
  }

  get numOutputTokens(): number {
    return this.#outputTokenIds.length;
  }

  /** Prompt plus output tokens. */
  get numTokens(): number {
    return this.#allTokenIds.length;
  }

  /** The output-token budget (`params.maxTokens`; Infinity when unlimited). */
  get maxTokens(): number {
    return this.params.maxTokens;
  }

  isFinished(): boolean {
    return isFinishedStatus(this.status);
  }

  /** 'stop' | 'length' | 'abort' once finished, else null. */
  get finishReason(): FinishReason | null {
    return finishReasonOf(this.status);
  }

  /** Appends sampled tokens (the scheduler's updateFromOutput is the only caller). */
  appendOutputTokenIds(tokenIds: number | readonly number[]): void {
    const ids = typeof tokenIds === 'number' ? [tokenIds] : tokenIds;
    for (const t of ids) {
      this.#outputTokenIds.push(t);
      this.#allTokenIds.push(t);
    }
  }
}
