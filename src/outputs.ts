/**
 * Outputs in vLLM's shape (vllm/outputs.py), camelCase.
 *
 * Log-probabilities are Maps (token id -> Logprob), as vLLM's dicts; JSON.stringify(Map) gives `{}`, so the
 * engine's outputs carry a (non-enumerable) `toJSON` that writes them as plain objects keyed by token id.
 *
 * @example
 * const [out] = await llm.generate('Once upon a time');
 * console.log(out.outputs[0].text, out.outputs[0].finishReason);
 * JSON.stringify(out); // logprobs as [{ "464": { "logprob": -0.1, "rank": 1, "decodedToken": " The" } }, ...]
 */

import type { RequestStateStats } from './engine/metrics.js';
import type { ToolCall } from './tool-calls/forced-tools.js';

export type { RequestStateStats };

/** One candidate token and its log-probability, as vLLM's `Logprob`. */
export interface Logprob {
  logprob: number;
  /** 1-based rank of this token in the distribution the sampler used. */
  rank: number;
  decodedToken: string | null;
}

/** Per output position: token id -> Logprob for the sampled token and the top-k candidates. */
export type SampleLogprobs = Map<number, Logprob>[];

/** One generated sequence of a request (vLLM's `CompletionOutput`). */
export interface CompletionOutput {
  /** Index of this sequence among the request's `n` outputs. */
  index: number;
  /** Generated text (cumulative, or the new part only when the request streams deltas). */
  text: string;
  tokenIds: number[];
  /** Sum of the sampled tokens' log-probabilities; null unless logprobs were requested. */
  cumulativeLogprob: number | null;
  /** Top-k log-probabilities per generated token; null unless requested. */
  logprobs: SampleLogprobs | null;
  /**
   * 'stop' (EOS, stop token or stop string), 'length' (maxTokens or model length), 'abort', 'repetition'
   * (repetitionDetection; stopReason 'repetition_detected'); null while running.
   */
  finishReason: 'stop' | 'length' | 'abort' | 'repetition' | null;
  /** The stop string or stop token id that ended the sequence; null for EOS or length. */
  stopReason: string | number | null;
  /**
   * `llm.chat` with `tools` and a `toolChoice` of 'required' or a named function (the output is constrained to
   * valid calls), or 'auto' with a `toolParser`: the calls read out of `text`, OpenAI-shaped (put them in the next
   * turn's assistant message as `tool_calls`); null when the text holds none. Absent on other outputs.
   */
  toolCalls?: ToolCall[] | null;
  /** `llm.chat` with a `reasoningParser`: the think block split off `text` (null if none); absent otherwise. */
  reasoning?: string | null;
  /** With `toolCalls` or `reasoning`: the text that is neither (null when nothing is left). */
  content?: string | null;
  /** The output as plain JSON data (logprobs Maps as objects keyed by token id); JSON.stringify calls it. */
  toJSON?(): CompletionOutputJSON;
}

/** The result of one request (vLLM's `RequestOutput`). */
export interface RequestOutput {
  requestId: string;
  prompt: string | null;
  promptTokenIds: number[];
  /** Log-probabilities of the prompt tokens (first entry null), when `promptLogprobs` was set. */
  promptLogprobs: (Map<number, Logprob> | null)[] | null;
  outputs: CompletionOutput[];
  finished: boolean;
  /** Prompt tokens served from the prefix cache. */
  numCachedTokens: number;
  /**
   * The request's timestamps when this output was made (vLLM's RequestOutput.metrics, a RequestStateStats): arrival
   * (epoch seconds), queued / first scheduled / first token / last token (monotonic seconds), first-token latency,
   * tokens generated. Absent on outputs not made by the engine (beam search's).
   */
  metrics?: RequestStateStats;
  /** The output as plain JSON data (logprobs Maps as objects keyed by token id); JSON.stringify calls it. */
  toJSON?(): RequestOutputJSON;
}

/** Token id (as a string key) -> Logprob: one position's logprobs as JSON. */
export type LogprobsJSON = Record<string, Logprob>;

export interface CompletionOutputJSON extends Omit<CompletionOutput, 'logprobs' | 'toJSON'> {
  logprobs: LogprobsJSON[] | null;
}

export interface RequestOutputJSON extends Omit<RequestOutput, 'promptLogprobs' | 'outputs' | 'toJSON'> {
  promptLogprobs: (LogprobsJSON | null)[] | null;
  outputs: CompletionOutputJSON[];
}

const plain = (m: Map<number, Logprob>): LogprobsJSON => Object.fromEntries(m);

/** A completion as plain JSON data. */
export function completionOutputToJSON(c: CompletionOutput): CompletionOutputJSON {
  const { toJSON: _, ...rest } = c;
  return { ...rest, logprobs: c.logprobs ? c.logprobs.map(plain) : null };
}

/** A request output as plain JSON data. */
export function requestOutputToJSON(out: RequestOutput): RequestOutputJSON {
  const { toJSON: _, ...rest } = out;
  return { ...rest, promptLogprobs: out.promptLogprobs ? out.promptLogprobs.map((m) => (m ? plain(m) : null)) : null, outputs: out.outputs.map(completionOutputToJSON) };
}

/**
 * Gives an output and its completions their toJSON, not enumerable (so equality checks and spreads see the data
 * fields only). The engine's output processor calls it on every output it emits.
 */
export function withToJSON(out: RequestOutput): RequestOutput {
  for (const c of out.outputs) Object.defineProperty(c, 'toJSON', { value: () => completionOutputToJSON(c), enumerable: false, configurable: true });
  Object.defineProperty(out, 'toJSON', { value: () => requestOutputToJSON(out), enumerable: false, configurable: true });
  return out;
}
