/**
 * The engine core's scheduler (vLLM V1's `sched/scheduler.py`). No prefill or decode phase: every request has
 * `numComputedTokens` (KV in the cache) and `numTokens` (known tokens), and each step hands out tokens from a budget
 * so the first catches up with the second. A long prompt is therefore split over steps (chunked prefill) and a decode
 * is a request one token behind. Imports nothing GPU-related.
 *
 * One schedule():
 *   1. Running requests, those with one token left (decodes) first, then those still catching up: each gets
 *      min(tokens left, longPrefillTokenThreshold, budget left) tokens. If the KV cache has no room, the
 *      lowest-priority running request (FCFS: the latest admitted) is preempted, its blocks freed and it goes back to
 *      the front of the waiting queue, until the allocation fits or the request itself was the one preempted.
 *   2. Unless step 1 preempted, waiting requests in queue order (FCFS, or priority then arrival): prefix-cache hits
 *      first, then as many tokens as the budget allows, while there are free blocks and fewer than maxNumSeqs run.
 *   3. Every scheduled request's numComputedTokens advances by its share (the next schedule plans from there).
 * updateFromOutput() then appends the sampled tokens, registers newly computed full blocks in the prefix cache, runs
 * the stop check and frees finished requests.
 *
 * Async scheduling (vLLM's async_scheduling): markPlaceholders(out) counts the tokens a submitted step will sample
 * before they are known, and the next schedule() plans past them (a decode of placeholder id -1, which the runner
 * fills on the GPU), unless the request's length cap would end it there. updateFromOutput then replaces them; a
 * request preempted meanwhile still takes its token (computed before its blocks were freed).
 *
 * @example
 * const s = new Scheduler({ maxNumBatchedTokens: 512, maxNumSeqs: 16, maxModelLen: 2048 }, { numBlocks: 256, blockSize: 16 });
 * s.addRequest(req);
 * while (s.hasUnfinishedRequests()) {
 *   const out = s.schedule();
 *   const sampled = runner.execute(out); // Map requestId -> [tokenId] for entries with needsSample
 *   for (const o of s.updateFromOutput(out, sampled).outputs) emit(o);
 * }
 */
import { endsInRepetition } from './repetition.js';
import { CapacityError, InvalidArgumentError } from '../errors.js';
import { KVCacheManager } from './kv-cache-manager.js';
import { isFinishedStatus, RequestStatus, type Request } from './request.js';
import type { EngineCoreOutput, EngineCoreOutputs, ScheduledRequest, SchedulerOutput, SchedulerStats, SpecDecodingStats } from './scheduler-output.js';

export interface SchedulerConfig {
  /** Token budget of one step: the most tokens one forward pass computes. */
  maxNumBatchedTokens: number;
  /** The most requests running at once. */
  maxNumSeqs: number;
  /** Longest sequence, prompt plus output. */
  maxModelLen: number;
  /** If set (> 0), a request gets at most this many tokens per step, so several long prompts share a step. */
  longPrefillTokenThreshold?: number;
  /** 'fcfs' (default): arrival order. 'priority': lower `priority` first, then earlier arrival. */
  policy?: 'fcfs' | 'priority';
  /** Speculative decoding: the most draft tokens per request and step (0: off, the default). */
  numSpeculativeTokens?: number;
}

/** KV-cache geometry (the model runner allocates numBlocks * blockSize slots per layer). */
export interface CacheConfig {
  numBlocks: number;
  /** Tokens per block. */
  blockSize: number;
  /** Hash-based prefix caching; default true. */
  enablePrefixCaching?: boolean;
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

export class Scheduler {
  readonly config: Readonly<Required<SchedulerConfig>>;
  readonly kvCacheManager: KVCacheManager;
  readonly #requests = new Map<string, Request>();
  // Queue order: FCFS by arrival at the scheduler (preempted requests at the front); priority: sorted by
  // (priority, arrivalTime), preempted requests before their equals.
  #waiting: Request[] = [];
  // Admission order; the preemption victim under FCFS is the last.
  #running: Request[] = [];
  // Finished since the previous schedule(); reported once in SchedulerOutput.finishedRequestIds.
  #finishedIds: string[] = [];
  #numPreemptions = 0;
  #spec: SpecDecodingStats | null = null;

  constructor(config: SchedulerConfig, cache: CacheConfig) {
    for (const k of ['maxNumBatchedTokens', 'maxNumSeqs', 'maxModelLen'] as const) {
      if (!isPositiveInt(config[k])) throw new InvalidArgumentError(k, `${k} must be a positive integer, got ${config[k]}.`);
    }
    const threshold = config.longPrefillTokenThreshold ?? 0;
    if (!Number.isInteger(threshold) || threshold < 0) {
      throw new InvalidArgumentError('longPrefillTokenThreshold', `longPrefillTokenThreshold must be a non-negative integer, got ${threshold}.`);
    }
    const policy = config.policy ?? 'fcfs';
    if (policy !== 'fcfs' && policy !== 'priority') {
      throw new InvalidArgumentError('policy', `policy must be 'fcfs' or 'priority', got '${policy}'.`);
    }
    const k = config.numSpeculativeTokens ?? 0;
    if (!Number.isInteger(k) || k < 0) throw new InvalidArgumentError('numSpeculativeTokens', `numSpeculativeTokens must be a non-negative integer, got ${k}.`);
    this.config = { ...config, longPrefillTokenThreshold: threshold, policy, numSpeculativeTokens: k };
    if (k > 0) this.#spec = { numDrafts: 0, numDraftTokens: 0, numAcceptedTokens: 0, numAcceptedTokensPerPos: new Array<number>(k).fill(0), acceptanceRate: 0 };
    this.kvCacheManager = new KVCacheManager({ ...cache, maxModelLen: config.maxModelLen });
  }

  /**
   * Queues a new request. Throws CapacityError when it could never run to its end: a prompt longer than maxModelLen,
   * or more KV blocks than the whole cache for its prompt plus maxTokens (capped at maxModelLen); such a request
   * would otherwise preempt itself forever.
   */
  addRequest(req: Request): void {
    const id = req.requestId;
    if (this.#requests.has(id)) throw new InvalidArgumentError('requestId', `requestId '${id}' is already in use.`);
    if (req.status !== RequestStatus.WAITING || req.numComputedTokens !== 0 || req.numOutputTokens !== 0) {
      throw new InvalidArgumentError('request', `request '${id}' has already been scheduled (status ${req.status}).`);
    }
    const { maxModelLen } = this.config;
    const kv = this.kvCacheManager;
    const P = req.numPromptTokens;
    if (P > maxModelLen) {
      throw new CapacityError(`Request '${id}': its prompt of ${P} tokens is longer than maxModelLen (${maxModelLen}).`);
    }
    // The last token of the finished sequence is never run through the model, so it needs no slot.
    const finalLen = Math.min(P + req.maxTokens, maxModelLen);
    const kvTokens = Math.max(P, finalLen - 1);
    const blocksNeeded = kv.numBlocksFor(kvTokens);
    if (blocksNeeded > kv.numBlocks) {
      throw new CapacityError(
        `Request '${id}' needs ${blocksNeeded} KV-cache blocks (${kvTokens} tokens: a ${P}-token prompt and up to ` +
          `${finalLen - P} output tokens) but the cache has only ${kv.numBlocks} blocks of ${kv.blockSize} tokens.`,
      );
    }
    this.#requests.set(id, req);
    this.#enqueue(req, false);
  }

  /** Plans one step. See the numbered list at the top of this file. */
  schedule(): SchedulerOutput {
    const kv = this.kvCacheManager;
    let budget = this.config.maxNumBatchedTokens;
    const scheduled = new Map<Request, number>(); // insertion order = batch order
    const preempted: Request[] = [];
    const specOf = new Map<Request, number[]>(); // draft tokens scheduled for verification

    // 1. Running requests, decodes first.
    const left = (r: Request) => r.numTokens + r.numPlaceholders - r.numComputedTokens;
    const order = [...this.#running.filter((r) => left(r) <= 1), ...this.#running.filter((r) => left(r) > 1)];
    for (const req of order) {
      if (budget === 0) break;
      if (req.status !== RequestStatus.RUNNING) continue; // preempted earlier in this loop
      let n = this.#numNewTokens(req, req.numComputedTokens, budget);
      if (n === 0) continue;
      // Speculative decoding: a decode also verifies its drafts, which take budget and KV slots like any token.
      const drafts = req.specTokenIds;
      req.specTokenIds = [];
      if (drafts.length > 0 && n === 1 && left(req) === 1 && req.numPlaceholders === 0) {
        specOf.set(req, drafts.slice(0, this.#maxDrafts(req, budget - 1)));
        n += specOf.get(req)!.length;
      }
      let fits = true;
      while (kv.allocateSlots(req, n) === null) {
        const victim = this.#pickVictim();
        const undone = scheduled.get(victim);
        if (undone !== undefined) {
          budget += undone;
          scheduled.delete(victim);
        }
        specOf.delete(victim);
        this.#preempt(victim);
        preempted.push(victim);
        if (victim === req) {
          fits = false;
          break;
        }
      }
      if (!fits) continue;
      scheduled.set(req, n);
      budget -= n;
    }

    // 2. Waiting requests, unless memory was short this step.
    if (preempted.length === 0) {
      while (this.#waiting.length > 0 && budget > 0 && this.#running.length < this.config.maxNumSeqs) {
        const req = this.#waiting[0];
        const hit = kv.getComputedBlocks(req);
        const n = this.#numNewTokens(req, hit.numComputedTokens, budget);
        if (kv.allocateSlots(req, n, hit.blocks) === null) break;
        this.#waiting.shift();
        if (req.status === RequestStatus.WAITING) req.numCachedTokens = hit.numComputedTokens;
        req.numComputedTokens = hit.numComputedTokens;
        req.status = RequestStatus.RUNNING;
        this.#running.push(req);
        scheduled.set(req, n);
        budget -= n;
      }
    }

    // 3. The output, then advance numComputedTokens.
    const scheduledRequests: ScheduledRequest[] = [];
    let total = 0;
    for (const [req, n] of scheduled) {
      const start = req.numComputedTokens;
      const drafts = specOf.get(req) ?? [];
      const tokenIds = req.allTokenIds.slice(start, start + n - drafts.length);
      tokenIds.push(...drafts);
      while (tokenIds.length < n) tokenIds.push(-1); // placeholders: sampled by the step in flight
      scheduledRequests.push({
        requestId: req.requestId,
        tokenIds,
        startPosition: start,
        blockTable: kv.blockTable(req.requestId),
        needsSample: start + n - drafts.length === req.numTokens + req.numPlaceholders,
        ...(drafts.length > 0 ? { specTokenIds: drafts } : {}),
      });
      req.numComputedTokens += n;
      total += n;
    }
    const out: SchedulerOutput = {
      scheduledRequests,
      totalNumScheduledTokens: total,
      preemptedRequestIds: preempted.map((r) => r.requestId),
      finishedRequestIds: this.#finishedIds,
      blockCopies: kv.takePendingCopies(),
    };
    this.#finishedIds = [];
    return out;
  }

  /**
   * Applies a step's results: `sampled` maps each request whose chunk had needsSample to its new token ids. Appends
   * them, registers the newly computed full blocks in the prefix cache, and finishes requests that hit EOS, a stop
   * token or their length cap (their blocks are freed at once). Requests aborted since schedule() are skipped.
   */
  updateFromOutput(out: SchedulerOutput, sampled: ReadonlyMap<string, readonly number[]>): EngineCoreOutputs {
    const outputs: EngineCoreOutput[] = [];
    for (const sr of out.scheduledRequests) {
      const req = this.#requests.get(sr.requestId);
      if (!req) continue;
      // A token in flight (async scheduling) is the request's next one, even if it was preempted since.
      const inFlight = sr.needsSample && req.numPlaceholders > 0;
      if (inFlight) req.numPlaceholders--;
      const ids = sampled.get(sr.requestId) ?? [];
      const k = sr.specTokenIds?.length ?? 0;
      if (k > 0 && req.status === RequestStatus.RUNNING) {
        if (ids.length < 1 || ids.length > k + 1) throw new Error(`updateFromOutput: '${sr.requestId}' verified ${k} drafts but got ${ids.length} tokens`);
        this.#recordAcceptance(k, ids.length - 1);
        // The rejected drafts' KV is garbage: forget it (their slots are rewritten next step) and free whole
        // blocks past what stays computed.
        req.numComputedTokens -= k + 1 - ids.length;
        this.kvCacheManager.trimSlots(req);
      }
      if (req.status === RequestStatus.RUNNING) this.kvCacheManager.cacheBlocks(req);
      else if (!(inFlight && req.status === RequestStatus.PREEMPTED)) continue;
      if (!sr.needsSample) {
        if (ids.length > 0) throw new Error(`updateFromOutput: '${sr.requestId}' got tokens for a chunk that needed no sample`);
        continue;
      }
      if (ids.length === 0) throw new Error(`updateFromOutput: no sampled token for '${sr.requestId}'`);
      outputs.push(this.#append(req, ids));
    }
    return { outputs, stats: this.stats };
  }

  /**
   * Starts `child` as a fork of `parent` (n > 1, best_of): same prompt and computed tokens, sharing every KV block
   * of the parent (the manager copies a shared block before either writes to it). Call it between the runner's
   * step and updateFromOutput, so the parent still holds its blocks; the child's first tokens, sampled from the
   * parent's logits row, then go in through appendTokens. With no seat free (maxNumSeqs) or a parent no longer
   * running, the child waits instead and recomputes its prompt, mostly from the prefix cache.
   */
  forkRequest(parentId: string, child: Request): void {
    const parent = this.#requests.get(parentId);
    if (!parent) throw new Error(`forkRequest: unknown parent '${parentId}'`);
    if (this.#requests.has(child.requestId)) throw new InvalidArgumentError('requestId', `request id '${child.requestId}' is already in use.`);
    this.#requests.set(child.requestId, child);
    if (parent.status === RequestStatus.RUNNING && this.#running.length < this.config.maxNumSeqs) {
      this.kvCacheManager.fork(parent, child);
      child.numComputedTokens = parent.numComputedTokens;
      child.numCachedTokens = parent.numCachedTokens;
      child.status = RequestStatus.RUNNING;
      this.#running.push(child);
    } else {
      this.#enqueue(child, true);
    }
  }

  /**
   * Async scheduling: the step `out` is submitted and the next is planned before its results, so each request it
   * samples holds a placeholder until updateFromOutput(out).
   */
  markPlaceholders(out: SchedulerOutput): void {
    for (const sr of out.scheduledRequests) {
      const req = this.#requests.get(sr.requestId);
      if (sr.needsSample && req?.status === RequestStatus.RUNNING) req.numPlaceholders++;
    }
  }

  /**
   * Speculative decoding: sets the draft tokens of running requests (requestId -> drafts), to be verified by the
   * next schedule(); requests unknown, finished or waiting are skipped (vLLM's update_draft_token_ids).
   */
  updateDraftTokenIds(drafts: ReadonlyMap<string, readonly number[]>): void {
    if (this.config.numSpeculativeTokens === 0) return;
    for (const [id, ids] of drafts) {
      const req = this.#requests.get(id);
      if (req?.status === RequestStatus.RUNNING) req.specTokenIds = ids.slice(0, this.config.numSpeculativeTokens);
    }
  }

  /** Appends tokens sampled for a request outside its own scheduled chunk (a fork's first token). */
  appendTokens(requestId: string, ids: readonly number[]): EngineCoreOutput | null {
    const req = this.#requests.get(requestId);
    if (!req || req.isFinished()) return null;
    return this.#append(req, ids);
  }

  // Appends sampled ids until a stop condition; a finished request leaves the queues and frees its blocks.
  #append(req: Request, ids: readonly number[]): EngineCoreOutput {
    const newTokenIds: number[] = [];
    for (const t of ids) {
      req.appendOutputTokenIds(t);
      newTokenIds.push(t);
      if (this.#checkStop(req)) break;
    }
    if (req.isFinished()) {
      const w = this.#waiting.indexOf(req);
      if (w >= 0) this.#waiting.splice(w, 1);
      this.#free(req);
    }
    return {
      requestId: req.requestId,
      newTokenIds,
      finishReason: req.finishReason,
      stopReason: req.stopReason,
      numCachedTokens: req.numCachedTokens,
    };
  }

  /**
   * Ends requests from outside the step (abort, or a stop string found by the detokenizer) with a finished status,
   * freeing their blocks at once, whether waiting or running. Unknown or finished ids are ignored. Safe between
   * schedule() and updateFromOutput(): that step's writes land only in blocks no cached prefix points to.
   */
  finishRequests(requestIds: string | Iterable<string>, status: RequestStatus): void {
    if (!isFinishedStatus(status)) throw new InvalidArgumentError('status', `finishRequests needs a finished status, got '${status}'.`);
    for (const id of typeof requestIds === 'string' ? [requestIds] : [...requestIds]) {
      const req = this.#requests.get(id);
      if (!req) continue;
      if (req.status !== RequestStatus.RUNNING) this.#waiting.splice(this.#waiting.indexOf(req), 1);
      req.status = status;
      this.#free(req);
    }
  }

  hasUnfinishedRequests(): boolean {
    return this.#waiting.length + this.#running.length > 0;
  }

  get numRunning(): number {
    return this.#running.length;
  }

  get numWaiting(): number {
    return this.#waiting.length;
  }

  /** Counters for logging and metrics (a fresh record on each read). */
  get stats(): SchedulerStats {
    const { queries, hits } = this.kvCacheManager.prefixCacheStats;
    return {
      numRunning: this.#running.length,
      numWaiting: this.#waiting.length,
      kvCacheUsage: this.kvCacheManager.usage,
      prefixCacheQueries: queries,
      prefixCacheHits: hits,
      prefixCacheHitRate: queries === 0 ? 0 : hits / queries,
      numPreemptions: this.#numPreemptions,
      specDecoding: this.#spec && {
        ...this.#spec,
        numAcceptedTokensPerPos: this.#spec.numAcceptedTokensPerPos.slice(),
        acceptanceRate: this.#spec.numDraftTokens === 0 ? 0 : this.#spec.numAcceptedTokens / this.#spec.numDraftTokens,
      },
    };
  }

  // Tokens to give `req` (computed up to `computed`) this step.
  #numNewTokens(req: Request, computed: number, budget: number): number {
    const ahead = req.numPlaceholders;
    // A placeholder that reaches the length cap ends the request: nothing to compute after it.
    if (ahead > 0 && (req.numOutputTokens + ahead >= req.params.maxTokens || req.numTokens + ahead >= this.config.maxModelLen)) return 0;
    let n = req.numTokens + ahead - computed;
    const threshold = this.config.longPrefillTokenThreshold;
    if (threshold > 0) n = Math.min(n, threshold);
    return Math.min(n, budget);
  }

  // Drafts a decode of `req` may verify: within the budget left after its own token, and never past its length
  // cap (a draft token at the cap could not be kept anyway: the step's tokens end at maxTokens / maxModelLen).
  #maxDrafts(req: Request, budget: number): number {
    const byLength = Math.min(req.params.maxTokens - req.numOutputTokens, this.config.maxModelLen - req.numTokens) - 1;
    return Math.max(0, Math.min(budget, byLength, this.config.numSpeculativeTokens));
  }

  #recordAcceptance(numDrafts: number, numAccepted: number): void {
    const s = this.#spec;
    if (!s) return;
    s.numDrafts++;
    s.numDraftTokens += numDrafts;
    s.numAcceptedTokens += numAccepted;
    for (let j = 0; j < numAccepted; j++) s.numAcceptedTokensPerPos[j]++;
  }

  // vLLM's stop check (sched/utils.py check_stop), plus minTokens for EOS and stop tokens.
  #checkStop(req: Request): boolean {
    const p = req.params;
    if (req.numTokens >= this.config.maxModelLen || req.numOutputTokens >= p.maxTokens) {
      req.status = RequestStatus.FINISHED_LENGTH_CAPPED;
      return true;
    }
    if (req.numOutputTokens < p.minTokens) return false;
    const last = req.outputTokenIds[req.numOutputTokens - 1];
    if (p.eosTokenIds.includes(last)) {
      req.status = RequestStatus.FINISHED_STOPPED;
      return true;
    }
    if (p.stopTokenIds.includes(last)) {
      req.status = RequestStatus.FINISHED_STOPPED;
      req.stopReason = last;
      return true;
    }
    if (p.repetitionDetection && endsInRepetition(req.outputTokenIds, p.repetitionDetection)) {
      req.status = RequestStatus.FINISHED_REPETITION;
      req.stopReason = 'repetition_detected';
      return true;
    }
    return false;
  }

  // FCFS: the latest admitted. Priority: the largest (priority, arrivalTime), the latest admitted among equals.
  #pickVictim(): Request {
    const running = this.#running;
    if (this.config.policy === 'fcfs') return running[running.length - 1];
    let victim = running[0];
    for (const r of running) {
      if (r.priority > victim.priority || (r.priority === victim.priority && r.arrivalTime >= victim.arrivalTime)) victim = r;
    }
    return victim;
  }

  // Frees the request's blocks and requeues it; it will be recomputed from its prompt and outputs so far.
  #preempt(req: Request): void {
    this.#running.splice(this.#running.indexOf(req), 1);
    this.kvCacheManager.free(req);
    req.status = RequestStatus.PREEMPTED;
    req.numComputedTokens = 0;
    req.specTokenIds = [];
    req.numPreemptions++;
    this.#numPreemptions++;
    this.#enqueue(req, true);
  }

  #enqueue(req: Request, front: boolean): void {
    const q = this.#waiting;
    if (this.config.policy === 'fcfs') {
      if (front) q.unshift(req);
      else q.push(req);
      return;
    }
    // Sorted by (priority, arrivalTime); a preempted request goes before its equals, a new one after.
    const before = (a: Request, b: Request) =>
      a.priority < b.priority || (a.priority === b.priority && (a.arrivalTime < b.arrivalTime || (front && a.arrivalTime === b.arrivalTime)));
    let i = q.length;
    while (i > 0 && before(req, q[i - 1])) i--;
    q.splice(i, 0, req);
  }

  // Drops a finished request: blocks back to the pool, reported in the next SchedulerOutput.finishedRequestIds.
  #free(req: Request): void {
    const i = this.#running.indexOf(req);
    if (i >= 0) this.#running.splice(i, 1);
    this.kvCacheManager.free(req);
    this.#requests.delete(req.requestId);
    this.#finishedIds.push(req.requestId);
  }
}
