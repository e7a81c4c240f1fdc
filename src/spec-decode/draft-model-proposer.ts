/**
 * The draft-model proposer (vLLM's method 'draft_model'): a smaller model with the target's vocabulary, on an
 * executor of the target's kind (the same backend), proposes k tokens per sequence autoregressively, and the
 * target verifies them in one forward.
 *
 * The draft keeps its own paged KV cache (its own KVCacheManager over its own blocks, no prefix caching) and, per
 * sequence, the tokens whose KV it holds (`fed`, positions [0, fed.length)). Each step:
 *   1. reconcile: the sequence's tokens now (prompt + output) are compared with `fed`; the draft's KV stays valid
 *      for their common prefix. Drafts the target rejected differ from the tokens it gave instead, so they are
 *      trimmed (numComputedTokens rolled back, blocks past it freed: KVCacheManager.trimSlots), as the target's.
 *   2. catch up: the tokens past the common prefix are fed in one forward (several when a long prompt exceeds the
 *      token budget): after a prefill the whole prompt; after a step that accepted every draft, the last draft and
 *      the bonus token; otherwise the target's token. The last row gives draft 1.
 *   3. k - 1 more one-token forwards, batched over the sequences, give drafts 2..k.
 * A greedy row (or draftSampleMethod 'greedy') takes the draft's argmax, sampled on the executor (only ids come
 * back); a random row under 'probabilistic' draws from q = the draft's distribution with the request's filters,
 * from the request's generator, and returns q for the rejection sampler's min(1, p / q) test.
 *
 * When the draft's blocks run out, the sequences idle longest lose their draft state (recomputed when they next
 * speculate); a sequence that still does not fit proposes nothing this step. Correctness never depends on the
 * draft: the target verifies every token.
 *
 * @example
 *   const p = await DraftModelProposer.load(config, draftModel, loadExecutor, target.limits, options);
 *   await p.propose([{ requestId: 'r', promptTokenIds, outputTokenIds, maxTokens: 4, sample }]);
 */
import type { Executor, ExecutorLoader, ModelHandle, RunnerLimits, ScheduledSeq, StepResult } from '../engine/executor.js';
import { KVCacheManager } from '../engine/kv-cache-manager.js';
import type { EngineOptions } from '../engine/llm-engine.js';
import { Request } from '../engine/request.js';
import { targetProbs } from '../sampling/rejection-sampler.js';
import { rowSampling } from '../sampling/row-sampling.js';
import type { SamplerRequest } from '../sampling/sampler.js';
import { SamplingParams } from '../sampling-params.js';
import type { DraftModelConfig } from './config.js';
import type { Draft, ProposeRequest, Proposer } from './proposer.js';

/** The draft's state for one sequence. */
interface DraftSeq {
  /** What the draft's KVCacheManager reads: requestId, and numComputedTokens (= fed.length after each step). */
  req: Request;
  /** The tokens whose KV the draft holds, in position order: prompt + output as last seen, then its own drafts. */
  fed: number[];
  /** How many leading tokens of prompt + output it saw last time: those are final, so fed agrees with them. */
  known: number;
  /** The propose() call that last used it (eviction order). */
  lastUsed: number;
}

/** One sequence's work within a propose() call. */
interface Job {
  r: ProposeRequest;
  seq: DraftSeq;
  /** prompt + output. */
  tokens: readonly number[];
  /** Drafts to make (<= r.maxTokens). */
  k: number;
  /** Probabilistic drafting: the request's SamplingParams, whose filters shape q; null: argmax drafts. */
  random: SamplingParams | null;
  out: number[];
  probs: Float64Array[];
}

const GREEDY = new SamplingParams({ temperature: 0 });

export class DraftModelProposer implements Proposer {
  private readonly kv: KVCacheManager;
  private readonly seqs = new Map<string, DraftSeq>();
  private calls = 0;

  private constructor(
    readonly config: Readonly<DraftModelConfig>,
    /** The draft model's executor (the target's backend). */
    readonly runner: Executor,
  ) {
    const l = runner.limits;
    this.kv = new KVCacheManager({ numBlocks: l.numBlocks, blockSize: l.blockSize, maxModelLen: l.maxModelLen, enablePrefixCaching: false });
  }

  /**
   * Loads the draft model through the target's executor loader, its KV cache sized as the target's (same block size
   * and length; the target's blocks plus one per sequence for the drafts past its tokens).
   */
  static async load(config: DraftModelConfig, draft: ModelHandle, loadExecutor: ExecutorLoader, target: RunnerLimits, options: EngineOptions): Promise<DraftModelProposer> {
    const runner = await loadExecutor(draft, {
      ...options,
      quantization: config.quantization,
      speculativeConfig: null,
      onProgress: undefined,
      blockSize: target.blockSize,
      maxModelLen: target.maxModelLen,
      maxNumSeqs: target.maxNumSeqs,
      maxNumBatchedTokens: target.maxNumBatchedTokens,
      numGpuBlocksOverride: target.numBlocks + target.maxNumSeqs * Math.ceil(config.numSpeculativeTokens / target.blockSize),
    });
    return new DraftModelProposer(config, runner);
  }

  async propose(requests: readonly ProposeRequest[]): Promise<Map<string, Draft>> {
    const call = ++this.calls;
    const jobs: Job[] = [];
    const inBatch = new Set(requests.map((r) => r.requestId));
    for (const r of requests) {
      const tokens = [...r.promptTokenIds, ...r.outputTokenIds];
      const k = Math.min(r.maxTokens, this.config.numSpeculativeTokens, this.runner.limits.maxModelLen - tokens.length + 1);
      if (k <= 0) continue;
      const seq = this.reconcile(r.requestId, tokens);
      seq.lastUsed = call;
      // Slots for the unfed tokens and the k - 1 drafts fed back: positions up to tokens.length + k - 2.
      if (!this.allocate(seq, tokens.length + k - 1 - seq.fed.length, inBatch)) continue;
      const random = this.config.draftSampleMethod === 'probabilistic' && rowSampling(r.sample, { candidates: false }) !== 'argmax' ? r.sample.params : null;
      jobs.push({ r, seq, tokens, k, random, out: [], probs: [] });
    }
    await this.catchUp(jobs);
    for (let j = 1; j < this.config.numSpeculativeTokens; j++) {
      const round = jobs.filter((job) => job.out.length > j - 1 && job.k > j);
      if (round.length === 0) break;
      const seqs = round.map((job) => this.row(job, [job.out[j - 1]], true));
      this.take(round, seqs, await this.runner.execute(seqs));
    }
    const drafts = new Map<string, Draft>();
    for (const job of jobs) {
      // fed = tokens + the drafts fed back; the KV manager's count follows.
      job.seq.req.numComputedTokens = job.seq.fed.length;
      if (job.out.length > 0) drafts.set(job.r.requestId, job.random ? { tokenIds: job.out, probs: job.probs } : { tokenIds: job.out });
    }
    return drafts;
  }

  /** The sequence's draft state, its KV kept for the common prefix of what it fed and `tokens` (step 1). */
  private reconcile(requestId: string, tokens: readonly number[]): DraftSeq {
    let seq = this.seqs.get(requestId);
    if (!seq) {
      seq = { req: new Request({ requestId, promptTokenIds: [0], samplingParams: { maxTokens: 1 }, eosTokenIds: [] }), fed: [], known: 0, lastUsed: 0 };
      this.seqs.set(requestId, seq);
    }
    // A sequence's tokens only grow: what it had last time still agrees, only the drafts past it need checking.
    const n = Math.min(seq.fed.length, tokens.length);
    let common = Math.min(seq.known, n);
    seq.known = tokens.length;
    while (common < n && seq.fed[common] === tokens[common]) common++;
    // The last token is always fed again: its logits give draft 1 (never the case after a normal step).
    common = Math.min(common, tokens.length - 1);
    if (common < seq.fed.length) {
      seq.fed.length = common;
      seq.req.numComputedTokens = common;
      this.kv.trimSlots(seq.req);
    }
    return seq;
  }

  /** Room for `n` more tokens, evicting the state of sequences idle longest (not in this batch); false: none. */
  private allocate(seq: DraftSeq, n: number, inBatch: ReadonlySet<string>): boolean {
    seq.req.numComputedTokens = seq.fed.length;
    while (this.kv.allocateSlots(seq.req, n) === null) {
      let victim: string | null = null;
      let oldest = Infinity;
      for (const [id, s] of this.seqs) if (!inBatch.has(id) && s.lastUsed < oldest) [victim, oldest] = [id, s.lastUsed];
      if (victim === null) return false;
      this.release([victim]);
    }
    return true;
  }

  /** Step 2: feeds each job's unfed tokens, in chunks within the token budget; the last chunk gives draft 1. */
  private async catchUp(jobs: readonly Job[]): Promise<void> {
    const budget = this.runner.limits.maxNumBatchedTokens;
    let pending = jobs.slice();
    while (pending.length > 0) {
      let left = budget;
      const batch: Job[] = [];
      const seqs: ScheduledSeq[] = [];
      for (const job of pending) {
        if (left === 0) break;
        const from = job.seq.fed.length;
        const n = Math.min(job.tokens.length - from, left);
        left -= n;
        batch.push(job);
        seqs.push(this.row(job, job.tokens.slice(from, from + n), from + n === job.tokens.length));
      }
      const result = await this.runner.execute(seqs);
      this.take(batch, seqs, result);
      pending = pending.filter((job) => job.seq.fed.length < job.tokens.length);
    }
  }

  /** A sequence's share of a draft forward: `tokenIds` appended after what it fed; `last`: its next draft comes out. */
  private row(job: Job, tokenIds: number[], last: boolean): ScheduledSeq {
    const seq = job.seq;
    const s: ScheduledSeq = { requestId: job.r.requestId, tokenIds, startPos: seq.fed.length, blockTable: this.kv.blockTable(job.r.requestId), sample: null };
    seq.fed.push(...tokenIds);
    if (!last) return s;
    // A random row returns its logits row ('logits' over the chunk's last position only: no draft tokens in it).
    if (job.random) s.verify = { numSpecTokens: 0, rows: 'logits' };
    else s.sample = { params: GREEDY, generator: job.r.sample.generator, promptTokenIds: [], outputTokenIds: [] };
    return s;
  }

  /** Records the draft token each finished row gave. */
  private take(jobs: readonly Job[], seqs: readonly ScheduledSeq[], result: StepResult): void {
    jobs.forEach((job, i) => {
      const s = seqs[i];
      if (!s.sample && !s.verify) return;
      if (!job.random) {
        job.out.push(result.sampled.get(s.requestId)!.tokenId);
        return;
      }
      const q = targetProbs(result.allLogits.get(s.requestId)![0], job.random);
      job.out.push(drawFrom(q, job.r.sample.generator.uniform()));
      job.probs.push(q);
    });
  }

  release(requestIds: readonly string[]): void {
    for (const id of requestIds) {
      const seq = this.seqs.get(id);
      if (!seq) continue;
      this.kv.free(seq.req);
      this.seqs.delete(id);
    }
  }

  dispose(): void {
    this.runner.dispose();
  }
}

// Inverse-CDF draw from q (summing to 1); u in [0, 1).
function drawFrom(q: Float64Array, u: number): number {
  let acc = 0;
  let last = 0;
  for (let t = 0; t < q.length; t++) {
    if (!(q[t] > 0)) continue;
    acc += q[t];
    last = t;
    if (acc > u) return t;
  }
  return last;
}
