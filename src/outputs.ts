/**
 * Outputs in vLLM's shape (vllm/outputs.py), camelCase.
 *
 * @example
 * const [out] = await llm.generate('Once upon a time');
 * console.log(out.outputs[0].text, out.outputs[0].finishReason);
 */

import type { ToolCall } from './tool-calls/forced-tools.js';

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
  /** 'stop' (EOS, stop token or stop string), 'length' (maxTokens or model length), 'abort'; null while running. */
  finishReason: 'stop' | 'length' | 'abort' | null;
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
}
