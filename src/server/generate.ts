/**
 * What both generation endpoints share: validate every prompt before any runs, submit them, consume their delta
 * streams merged in arrival order, and abort what is left when the client goes away or stops reading (the engine
 * counts and times them for /metrics). Beam search yields one finished output per prompt through the same path.
 */
import { beamSearch, BeamSearchParams } from '../beam-search.js';
import type { LLMEngine, PreparedRequest, PromptInput } from '../engine/llm-engine.js';
import type { CompletionOutput, RequestOutput } from '../outputs.js';
import { SamplingParams, type SamplingParamsInit } from '../sampling-params.js';
import { InvalidArgumentError } from '../errors.js';
import { HttpError } from './errors.js';

/** One prompt of a request, as the engine will see it. */
export interface PromptSpec {
  prompt: PromptInput;
  /** The sampling fields the client sent (model defaults fill the rest). */
  init: SamplingParamsInit;
  /** Whether `max_tokens` came from the client (then prompt + max_tokens must fit the model, as in vLLM). */
  maxTokensExplicit: boolean;
}

export interface GenerateContext {
  engine: LLMEngine;
  /** The longest prompt + output the server accepts. */
  maxModelLen: number;
  /** SamplingParams defaults that the server's --generation-config DIR supplies (below the client's fields). */
  generationDefaults: SamplingParamsInit | null;
}

/** An output of prompt `prompt` (its choices are `out.outputs`, deltas). */
export interface TaggedOutput {
  prompt: number;
  out: RequestOutput;
}

/** A request that passed validation, ready to run. */
export interface PreparedBatch {
  prepared: PreparedRequest[];
  /** Set for use_beam_search: the beams per prompt are the request's `n`. */
  beam: BeamSearchParams | null;
}

/** The sampling params of a prompt: the client's fields, then --generation-config DIR's, then the model's. */
function samplingParams(ctx: GenerateContext, init: SamplingParamsInit): SamplingParams {
  const merged = ctx.generationDefaults ? { ...ctx.generationDefaults, ...stripUndefined(init) } : init;
  return new SamplingParams(merged);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}

/**
 * Validates and tokenizes every prompt (throwing 400s) without touching the engine. `requestId` names the engine
 * requests (`${requestId}-${i}`); it must be unique among running requests.
 */
export function prepareBatch(
  ctx: GenerateContext,
  prompts: PromptSpec[],
  requestId: string,
  opts: { useBeamSearch: boolean; lengthPenalty: number | null; priority: number; truncationSide?: 'left' | 'right' | null },
): PreparedBatch {
  if (!opts.useBeamSearch && opts.lengthPenalty !== null && opts.lengthPenalty !== 1) {
    throw new HttpError(400, 'length_penalty only applies with use_beam_search', 'length_penalty');
  }
  const prepared = prompts.map((p, i) => {
    // Beam search ranks n beams itself; the engine validates the prompt and the other fields as one sequence.
    const init = opts.useBeamSearch ? { ...p.init, n: 1, bestOf: undefined } : p.init;
    const params = samplingParams(ctx, init);
    const r = ctx.engine.prepareRequest({ prompt: p.prompt, params, requestId: `${requestId}-${i}`, priority: opts.priority, truncationSide: opts.truncationSide ?? undefined });
    const len = r.promptTokenIds.length;
    if (len >= ctx.maxModelLen) {
      throw new HttpError(400, `This model's maximum context length is ${ctx.maxModelLen} tokens. However, your request has ${len} input tokens. Please reduce the length of the input.`, 'prompt');
    }
    if (p.maxTokensExplicit && r.params.maxTokens !== null && len + r.params.maxTokens > ctx.maxModelLen) {
      throw new HttpError(
        400,
        `This model's maximum context length is ${ctx.maxModelLen} tokens. However, you requested ${len + r.params.maxTokens} tokens (${len} in the input, ${r.params.maxTokens} in the output). Please reduce the length of the input or the output.`,
        'max_tokens',
      );
    }
    // Without a limit from the client or the generation config (or with `null`), generate up to the max length.
    const cap = ctx.maxModelLen - len;
    const unset = !r.params.setFields.has('maxTokens') || r.params.maxTokens === null;
    if (unset || r.params.maxTokens! > cap) r.params = r.params.clone({ maxTokens: cap, minTokens: Math.min(r.params.minTokens, cap) });
    return r;
  });
  let beam: BeamSearchParams | null = null;
  if (opts.useBeamSearch) {
    const init = prompts[0].init;
    const p = prepared[0].params;
    beam = new BeamSearchParams({
      beamWidth: init.n ?? 1,
      maxTokens: Math.min(...prepared.map((r) => r.params.maxTokens!)),
      ignoreEos: p.ignoreEos,
      temperature: init.temperature ?? 0,
      lengthPenalty: opts.lengthPenalty ?? 1,
      includeStopStrInOutput: p.includeStopStrInOutput,
    });
  }
  return { prepared, beam };
}

/**
 * Compiles the grammars of a batch's structured outputs (cached by the engine) before anything runs or streams, so
 * that a schema, regex or grammar the engine refuses is a 400 naming `param`, the request field it came from.
 */
export async function compileGrammars(ctx: GenerateContext, batch: PreparedBatch, param: string): Promise<void> {
  if (!batch.prepared.some((r) => r.params.structuredOutputs)) return;
  if (batch.beam) throw new HttpError(400, 'structured outputs cannot be combined with use_beam_search', param);
  try {
    for (const r of batch.prepared) await ctx.engine.compileStructuredOutputs(r.params);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new HttpError(400, err.message.replace(/^structuredOutputs: /, `${param}: `), param);
    throw err;
  }
}

/**
 * Runs a prepared batch and yields its outputs as they come. Leaving the loop early (the client stopped reading)
 * or `signal` aborting (the client disconnected) aborts every unfinished request, freeing its KV blocks.
 */
export async function* runBatch(ctx: GenerateContext, batch: PreparedBatch, signal?: AbortSignal): AsyncGenerator<TaggedOutput> {
  const { prepared } = batch;
  if (batch.beam) {
    yield* runBeamSearch(ctx, batch, signal);
    return;
  }
  const streams = prepared.map((r) => ctx.engine.submit(r));
  const abortAll = () => streams.forEach((s) => ctx.engine.abort(s.requestId));
  if (signal?.aborted) abortAll();
  signal?.addEventListener('abort', abortAll, { once: true });
  try {
    for await (const [i, out] of merge(streams)) {
      yield { prompt: i, out };
    }
  } finally {
    signal?.removeEventListener('abort', abortAll);
    abortAll(); // no-op for finished requests
  }
}

/**
 * Beam search (vLLM's algorithm, src/beam-search.ts): `n` beams per prompt, returned as `n` choices, best first, in
 * one finished output per prompt. As vLLM's server: the text is the output's, without a final EOS unless
 * include_stop_str_in_output.
 */
async function* runBeamSearch(ctx: GenerateContext, batch: PreparedBatch, signal?: AbortSignal): AsyncGenerator<TaggedOutput> {
  const { prepared } = batch;
  const p = prepared[0].params;
  const results = await beamSearch(ctx.engine, prepared.map((r) => ({ promptTokenIds: r.promptTokenIds })), batch.beam!, { signal });
  if (signal?.aborted) return;
  const eos = ctx.engine.eosTokenIds;
  for (const [i, res] of results.entries()) {
    const r = prepared[i];
    const outputs: CompletionOutput[] = res.sequences.map((s, index) => {
      let ids = s.tokenIds.slice(res.promptTokenIds.length);
      if (!p.includeStopStrInOutput && s.finishReason === 'stop' && eos.includes(ids[ids.length - 1])) ids = ids.slice(0, -1);
      return {
        index,
        text: ctx.engine.tokenizer.decode(ids, { skipSpecialTokens: p.skipSpecialTokens }),
        tokenIds: ids,
        cumulativeLogprob: s.cumulativeLogprob,
        logprobs: r.params.logprobs !== null ? s.logprobs.slice(0, ids.length) : null,
        finishReason: s.finishReason,
        stopReason: null,
      };
    });
    yield {
      prompt: i,
      out: { requestId: r.requestId, prompt: r.prompt, promptTokenIds: r.promptTokenIds, promptLogprobs: null, outputs, finished: true, numCachedTokens: 0 },
    };
  }
}

/**
 * Merges async iterables, yielding `[source index, value]` in arrival order. A source's error is rethrown when it
 * is reached; the others' pending reads never reject unobserved (an unhandled rejection would end a Node process).
 */
export async function* merge<T>(sources: AsyncIterable<T>[]): AsyncGenerator<[number, T]> {
  type Step = [number, IteratorResult<T> | null, unknown];
  const iters = sources.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<Step>>();
  const pull = (i: number) =>
    pending.set(
      i,
      iters[i].next().then(
        (r): Step => [i, r, null],
        (e): Step => [i, null, e],
      ),
    );
  iters.forEach((_, i) => pull(i));
  while (pending.size > 0) {
    const [i, r, err] = await Promise.race(pending.values());
    if (!r) throw err;
    if (r.done) {
      pending.delete(i);
      continue;
    }
    pull(i);
    yield [i, r.value];
  }
}
