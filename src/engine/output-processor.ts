/**
 * Turns the engine core's new tokens into RequestOutputs: incremental detokenization, stop strings (which may
 * span tokens), logprobs bookkeeping and finish reasons. As vLLM's OutputProcessor it runs after each step and
 * tells the engine which sequences a stop string finished, so their KV blocks are freed.
 *
 * A request is a group of sequences: `n` outputs (or `bestOf` candidates of which the best `n` are returned),
 * each its own engine-core request, all reported in one RequestOutput.
 */
import { withToJSON, type Logprob, type RequestOutput, type CompletionOutput } from '../outputs.js';
import type { TokenLogprobs } from '../sampling/logprobs.js';
import type { SamplingParams } from '../sampling-params.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { IncrementalDetokenizer } from '../tokenizer/index.js';
import type { RequestStateStats } from './metrics.js';
import type { RequestStream } from './request-stream.js';

export type FinishReason = 'stop' | 'length' | 'abort' | 'repetition';

/** What the engine core reports for one sequence after a step. */
export interface CoreOutput {
  /** The sequence's engine-core id. */
  requestId: string;
  newTokenIds: number[];
  /** Per new token: its log-probability, rank and the top candidates (when the sampler computed them). */
  newLogprobs: TokenLogprobs[] | null;
  finishReason: FinishReason | null;
  stopReason: number | string | null;
  numCachedTokens: number;
}

/** One generated sequence. */
class SeqState {
  readonly detok: IncrementalDetokenizer | null;
  text = '';
  /** Characters of `text` and tokens already sent to a delta stream. */
  sentText = 0;
  sentTokens = 0;
  tokenIds: number[] = [];
  logprobs: Map<number, Logprob>[] = [];
  cumulativeLogprob = 0;
  finishReason: FinishReason | null = null;
  stopReason: number | string | null = null;
  /** New content since the last emission. */
  dirty = false;

  constructor(
    readonly index: number,
    readonly group: Group,
    tokenizer: Tokenizer,
  ) {
    const p = group.params;
    this.detok = p.detokenize
      ? new IncrementalDetokenizer(tokenizer, group.promptTokenIds, { skipSpecialTokens: p.skipSpecialTokens, spacesBetweenSpecialTokens: p.spacesBetweenSpecialTokens })
      : null;
  }
}

/** One user request and its sequences. */
class Group {
  seqs: SeqState[] = [];
  numCachedTokens = 0;
  /** Whether an output went out yet (stream_interval: the first goes at once). */
  emitted = false;
  /** Prompt logprobs by prompt position (entry 0 stays null), when requested. */
  promptLogprobs: (Map<number, Logprob> | null)[] | null;

  constructor(
    readonly requestId: string,
    readonly prompt: string | null,
    readonly promptTokenIds: number[],
    /** The user's parameters (what to report), not the engine's internal copy. */
    readonly params: SamplingParams,
    readonly stream: RequestStream,
    /** The engine's timestamps for it (copied into each output's `metrics`). */
    readonly stats: RequestStateStats | null,
  ) {
    this.promptLogprobs = params.promptLogprobs !== null ? [null] : null;
  }

  get finished(): boolean {
    return this.seqs.every((s) => s.finishReason !== null);
  }

  /** best_of > n: only the best n, at the end. */
  get selectsBest(): boolean {
    return (this.params.bestOf ?? this.params.n) > this.params.n;
  }
}

export class OutputProcessor {
  private readonly seqs = new Map<string, SeqState>();
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly tokenizer: Tokenizer,
    /** The engine's stream interval (vLLM's --stream-interval): outputs batch this many new tokens; a request may raise it. */
    private readonly streamInterval = 1,
  ) {}

  /** Registers a request whose sequences have the engine-core ids `seqIds` (index order). */
  addRequest(
    requestId: string,
    prompt: string | null,
    promptTokenIds: number[],
    params: SamplingParams,
    stream: RequestStream,
    seqIds: readonly string[],
    stats: RequestStateStats | null = null,
  ): void {
    const g = new Group(requestId, prompt, promptTokenIds, params, stream, stats);
    g.seqs = seqIds.map((_, i) => new SeqState(i, g, this.tokenizer));
    seqIds.forEach((id, i) => this.seqs.set(id, g.seqs[i]));
    this.groups.set(requestId, g);
  }

  /**
   * Applies one step's outputs and pushes RequestOutputs to the streams. Returns the engine-core ids of
   * sequences that a stop string finished (the engine must stop them).
   */
  process(outputs: CoreOutput[]): string[] {
    const stoppedByString: string[] = [];
    const touched = new Set<Group>();
    for (const o of outputs) {
      const s = this.seqs.get(o.requestId);
      if (!s || s.finishReason !== null) continue;
      touched.add(s.group);
      s.group.numCachedTokens = Math.max(s.group.numCachedTokens, o.numCachedTokens);
      s.dirty = true;
      for (let i = 0; i < o.newTokenIds.length; i++) {
        const id = o.newTokenIds[i];
        s.tokenIds.push(id);
        if (o.newLogprobs?.[i]) this.appendLogprobs(s, id, o.newLogprobs[i]);
        // vLLM: the text of an EOS or stop token that ended the sequence is left out unless includeStopStrInOutput.
        const stopToken = i === o.newTokenIds.length - 1 && o.finishReason === 'stop' && !s.group.params.includeStopStrInOutput;
        if (s.detok && !stopToken) {
          const prev = s.text.length;
          s.text += s.detok.push([id]);
          if (this.checkStopStrings(s, prev)) {
            stoppedByString.push(o.requestId);
            break;
          }
        }
      }
      if (s.finishReason === null && o.finishReason !== null) {
        s.finishReason = o.finishReason;
        s.stopReason = o.stopReason;
      }
    }
    for (const g of touched) this.emit(g);
    return stoppedByString;
  }

  /**
   * Records prompt logprobs: `rows[j]` is the distribution after prompt position `startPos + j`, i.e. the one that
   * predicts prompt token `startPos + j + 1`.
   */
  addPromptLogprobs(seqId: string, startPos: number, rows: TokenLogprobs[]): void {
    const g = this.seqs.get(seqId)?.group;
    if (!g?.promptLogprobs) return;
    rows.forEach((r, j) => {
      const pos = startPos + j + 1;
      if (pos < g.promptTokenIds.length) g.promptLogprobs![pos] = this.logprobEntry(g.promptTokenIds[pos], r);
    });
  }

  /** Ends a whole request from outside (abort; or an error, which rejects its stream). */
  finish(requestId: string, reason: FinishReason, error?: unknown): void {
    const g = this.groups.get(requestId);
    if (!g) return;
    this.forget(g);
    if (error) {
      g.stream.fail(error);
      return;
    }
    for (const s of g.seqs) {
      // Sequences that finished before keep their reason and are not reported again (in delta mode).
      if (s.finishReason !== null) continue;
      s.finishReason = reason;
      s.dirty = true;
    }
    g.stream.push(this.output(g, true));
  }

  private forget(g: Group): void {
    this.groups.delete(g.requestId);
    for (const [id, s] of this.seqs) if (s.group === g) this.seqs.delete(id);
  }

  private logprobEntry(token: number, lp: TokenLogprobs): Map<number, Logprob> {
    const decode = (t: number) => this.tokenizer.decode([t], { skipSpecialTokens: false });
    const entry = new Map<number, Logprob>([[token, { logprob: lp.sampled, rank: lp.ranks.get(token) ?? 1, decodedToken: decode(token) }]]);
    for (const [t, v] of lp.top) if (!entry.has(t)) entry.set(t, { logprob: v, rank: lp.ranks.get(t) ?? 0, decodedToken: decode(t) });
    return entry;
  }

  private appendLogprobs(s: SeqState, id: number, lp: TokenLogprobs): void {
    if (s.group.params.logprobs !== null) s.logprobs.push(this.logprobEntry(id, lp));
    s.cumulativeLogprob += lp.sampled;
  }

  /** Looks for a stop string ending in the text added since `prev`; truncates and finishes on a hit. */
  private checkStopStrings(s: SeqState, prev: number): boolean {
    const { stop, includeStopStrInOutput } = s.group.params;
    if (stop.length === 0) return false;
    let best: { at: number; stop: string } | null = null;
    for (const str of stop) {
      // The stop may start before the new text: search from where it could first overlap.
      const at = s.text.indexOf(str, Math.max(0, prev - str.length + 1));
      if (at >= 0 && (best === null || at < best.at)) best = { at, stop: str };
    }
    if (!best) return false;
    s.text = s.text.slice(0, includeStopStrInOutput ? best.at + best.stop.length : best.at);
    s.finishReason = 'stop';
    s.stopReason = best.stop;
    return true;
  }

  private emit(g: Group): void {
    const finished = g.finished;
    if (finished) this.forget(g);
    if ((g.params.outputKind === 'final' || g.selectsBest) && !finished) return;
    // vLLM's stream_interval: the first and the final outputs go at once, the others once a sequence has that many
    // new tokens (held outputs are not lost: deltas accumulate until the next one goes).
    const interval = Math.max(this.streamInterval, g.params.streamInterval ?? 1);
    if (interval > 1 && g.emitted && !finished && !g.seqs.some((s) => s.tokenIds.length - s.sentTokens >= interval)) return;
    g.emitted = true;
    g.stream.push(this.output(g, finished));
  }

  private output(g: Group, finished: boolean): RequestOutput {
    const delta = g.params.outputKind === 'delta' && !g.selectsBest;
    let seqs = g.seqs;
    if (g.selectsBest) seqs = [...seqs].sort((a, b) => b.cumulativeLogprob - a.cumulativeLogprob).slice(0, g.params.n);
    // Deltas carry the sequences with news only: one that finished earlier already sent its finish reason (vLLM
    // sends exactly one per choice), so the request's last output does not repeat it.
    else if (delta) seqs = seqs.filter((s) => s.dirty);
    const outputs = seqs.map((s, k) => this.completion(s, finished || s.finishReason !== null, delta, g.selectsBest ? k : s.index));
    for (const s of g.seqs) s.dirty = false;
    return withToJSON({
      requestId: g.requestId,
      prompt: g.prompt,
      promptTokenIds: g.promptTokenIds,
      promptLogprobs: g.promptLogprobs ? g.promptLogprobs.slice() : null,
      outputs,
      finished,
      numCachedTokens: g.numCachedTokens,
      ...(g.stats ? { metrics: { ...g.stats } } : {}),
    });
  }

  private completion(s: SeqState, done: boolean, delta: boolean, index: number): CompletionOutput {
    const p = s.group.params;
    // While running, hold back text that could still turn out to be the start of a stop string.
    const holdBack = done || p.includeStopStrInOutput ? 0 : Math.max(0, ...p.stop.map((x) => x.length - 1));
    const visible = Math.max(s.sentText, s.text.length - holdBack);
    const text = delta ? s.text.slice(s.sentText, visible) : s.text.slice(0, visible);
    const tokenIds = delta ? s.tokenIds.slice(s.sentTokens) : s.tokenIds.slice();
    const wantLogprobs = p.logprobs !== null;
    const logprobs = wantLogprobs ? (delta ? s.logprobs.slice(s.sentTokens) : s.logprobs.slice()) : null;
    s.sentText = visible;
    s.sentTokens = s.tokenIds.length;
    return {
      index,
      text,
      tokenIds,
      cumulativeLogprob: wantLogprobs ? s.cumulativeLogprob : null,
      logprobs,
      finishReason: done ? s.finishReason : null,
      stopReason: done ? s.stopReason : null,
    };
  }
}
