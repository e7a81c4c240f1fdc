/**
 * Turns the engine core's new tokens into RequestOutputs: incremental detokenization, stop strings (which may
 * span tokens), logprobs bookkeeping and the finish reason. As vLLM's OutputProcessor, it runs after each step
 * and tells the engine which requests a stop string finished, so their KV blocks are freed.
 */
import type { Tokenizer } from '../tokenizer/index.js';
import { IncrementalDetokenizer } from '../tokenizer/index.js';
import type { Logprob, RequestOutput } from '../outputs.js';
import type { SamplingParams } from '../sampling-params.js';
import type { RequestStream } from './request-stream.js';

export type FinishReason = 'stop' | 'length' | 'abort';

/** What the engine core reports for one request after a step. */
export interface CoreOutput {
  requestId: string;
  newTokenIds: number[];
  /** Per new token: its log-probability and the top candidates (when requested). */
  newLogprobs: { sampled: number; top: Map<number, number>; ranks: Map<number, number> }[] | null;
  finishReason: FinishReason | null;
  stopReason: number | string | null;
  numCachedTokens: number;
}

class RequestState {
  readonly detok: IncrementalDetokenizer | null;
  text = '';
  /** Characters of `text` already sent to a delta stream. */
  sentText = 0;
  sentTokens = 0;
  tokenIds: number[] = [];
  logprobs: Map<number, Logprob>[] | null;
  cumulativeLogprob: number | null;
  finishReason: FinishReason | null = null;
  stopReason: number | string | null = null;
  numCachedTokens = 0;
  /** Prompt logprobs by prompt position (entry 0 stays null), when requested. */
  promptLogprobs: (Map<number, Logprob> | null)[] | null;

  constructor(
    readonly requestId: string,
    readonly prompt: string | null,
    readonly promptTokenIds: number[],
    readonly params: SamplingParams,
    readonly stream: RequestStream,
    tokenizer: Tokenizer,
  ) {
    this.detok = params.detokenize
      ? new IncrementalDetokenizer(tokenizer, promptTokenIds, {
          skipSpecialTokens: params.skipSpecialTokens,
          spacesBetweenSpecialTokens: params.spacesBetweenSpecialTokens,
        })
      : null;
    this.logprobs = params.logprobs !== null ? [] : null;
    this.cumulativeLogprob = params.logprobs !== null ? 0 : null;
    this.promptLogprobs = params.promptLogprobs !== null ? [null] : null;
  }
}

export class OutputProcessor {
  private states = new Map<string, RequestState>();

  constructor(private readonly tokenizer: Tokenizer) {}

  addRequest(requestId: string, prompt: string | null, promptTokenIds: number[], params: SamplingParams, stream: RequestStream): void {
    this.states.set(requestId, new RequestState(requestId, prompt, promptTokenIds, params, stream, this.tokenizer));
  }

  has(requestId: string): boolean {
    return this.states.has(requestId);
  }

  /**
   * Applies one step's outputs; pushes RequestOutputs to the streams. Returns the ids of requests that a stop
   * string finished (the engine core must abort them).
   */
  process(outputs: CoreOutput[]): string[] {
    const stoppedByString: string[] = [];
    for (const o of outputs) {
      const s = this.states.get(o.requestId);
      if (!s) continue;
      s.numCachedTokens = o.numCachedTokens;
      for (let i = 0; i < o.newTokenIds.length; i++) {
        const id = o.newTokenIds[i];
        s.tokenIds.push(id);
        if (s.logprobs && o.newLogprobs) this.appendLogprobs(s, id, o.newLogprobs[i]);
        // vLLM: the text of an EOS or stop token that ended the sequence is left out unless includeStopStrInOutput.
        const stopToken = i === o.newTokenIds.length - 1 && o.finishReason === 'stop' && !s.params.includeStopStrInOutput;
        if (s.detok && !stopToken) {
          const prev = s.text.length;
          s.text += s.detok.push([id]);
          // A stop string ends the sequence even when the token also hit another stop condition.
          if (this.checkStopStrings(s, prev)) {
            stoppedByString.push(s.requestId);
            break;
          }
        }
      }
      if (s.finishReason === null && o.finishReason !== null) {
        s.finishReason = o.finishReason;
        s.stopReason = o.stopReason;
      }
      this.emit(s);
    }
    return stoppedByString;
  }

  /**
   * Records prompt logprobs: `rows[j]` is the distribution after prompt position `startPos + j`, i.e. the one that
   * predicts prompt token `startPos + j + 1`.
   */
  addPromptLogprobs(requestId: string, startPos: number, rows: { top: Map<number, number>; ranks: Map<number, number>; sampled: number }[]): void {
    const s = this.states.get(requestId);
    if (!s?.promptLogprobs) return;
    rows.forEach((r, j) => {
      const pos = startPos + j + 1;
      if (pos >= s.promptTokenIds.length) return;
      const token = s.promptTokenIds[pos];
      const entry = new Map<number, Logprob>();
      const decode = (t: number) => this.tokenizer.decode([t], { skipSpecialTokens: false });
      entry.set(token, { logprob: r.sampled, rank: r.ranks.get(token) ?? 1, decodedToken: decode(token) });
      for (const [t, v] of r.top) if (!entry.has(t)) entry.set(t, { logprob: v, rank: r.ranks.get(t) ?? 0, decodedToken: decode(t) });
      s.promptLogprobs![pos] = entry;
    });
  }

  /** Ends a request from outside (abort, error). */
  finish(requestId: string, reason: FinishReason, error?: unknown): void {
    const s = this.states.get(requestId);
    if (!s) return;
    this.states.delete(requestId);
    if (error) {
      s.stream.fail(error);
      return;
    }
    if (s.finishReason === null) s.finishReason = reason;
    s.stream.push(this.output(s, true));
  }

  private appendLogprobs(s: RequestState, id: number, lp: NonNullable<CoreOutput['newLogprobs']>[number]): void {
    const entry = new Map<number, Logprob>();
    const decode = (t: number) => this.tokenizer.decode([t], { skipSpecialTokens: false });
    entry.set(id, { logprob: lp.sampled, rank: lp.ranks.get(id) ?? 1, decodedToken: decode(id) });
    for (const [t, v] of lp.top) {
      if (!entry.has(t)) entry.set(t, { logprob: v, rank: lp.ranks.get(t) ?? 0, decodedToken: decode(t) });
    }
    s.logprobs!.push(entry);
    s.cumulativeLogprob! += lp.sampled;
  }

  /** Looks for a stop string ending in the text added since `prev`; truncates and finishes on a hit. */
  private checkStopStrings(s: RequestState, prev: number): boolean {
    const stops = s.params.stop;
    if (stops.length === 0) return false;
    let best: { at: number; stop: string } | null = null;
    for (const stop of stops) {
      // The stop may start before the new text: search from where it could first overlap.
      const from = Math.max(0, prev - stop.length + 1);
      const at = s.text.indexOf(stop, from);
      if (at >= 0 && (best === null || at < best.at)) best = { at, stop };
    }
    if (!best) return false;
    s.text = s.text.slice(0, s.params.includeStopStrInOutput ? best.at + best.stop.length : best.at);
    s.finishReason = 'stop';
    s.stopReason = best.stop;
    return true;
  }

  private emit(s: RequestState): void {
    const finished = s.finishReason !== null;
    if (finished) this.states.delete(s.requestId);
    if (s.params.outputKind === 'final' && !finished) return;
    s.stream.push(this.output(s, finished));
  }

  private output(s: RequestState, finished: boolean): RequestOutput {
    const delta = s.params.outputKind === 'delta';
    // While running, hold back text that could still turn out to be the start of a stop string.
    const holdBack = finished || s.params.includeStopStrInOutput ? 0 : Math.max(0, ...s.params.stop.map((x) => x.length - 1));
    const visible = Math.max(s.sentText, s.text.length - holdBack);
    const text = delta ? s.text.slice(s.sentText, visible) : s.text.slice(0, visible);
    const tokenIds = delta ? s.tokenIds.slice(s.sentTokens) : s.tokenIds.slice();
    const logprobs = s.logprobs ? (delta ? s.logprobs.slice(s.sentTokens) : s.logprobs.slice()) : null;
    s.sentText = visible;
    s.sentTokens = s.tokenIds.length;
    return {
      requestId: s.requestId,
      prompt: s.prompt,
      promptTokenIds: s.promptTokenIds,
      promptLogprobs: s.promptLogprobs ? s.promptLogprobs.slice() : null,
      outputs: [
        {
          index: 0,
          text,
          tokenIds,
          cumulativeLogprob: s.cumulativeLogprob,
          logprobs,
          finishReason: finished ? s.finishReason : null,
          stopReason: finished ? s.stopReason : null,
        },
      ],
      finished,
      numCachedTokens: s.numCachedTokens,
    };
  }
}
