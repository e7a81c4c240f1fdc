/**
 * POST /v1/completions: prompts as text, texts, token ids or lists of token ids; `n` choices per prompt, indexed
 * `prompt * n + output`; `echo` puts the prompt (and, with `logprobs`, its logprobs) before the text; streaming
 * sends one chunk per choice per engine step.
 */
import type { HttpError } from './errors.js';
import type { PromptInput } from '../engine/llm-engine.js';
import type { RequestOutput } from '../outputs.js';
import { checkModel, checkPromptChars, stringChars, unixTime, type ServerContext } from './context.js';
import { compileGrammars, prepareBatch, runBatch, type PreparedBatch, type TaggedOutput } from './generate.js';
import { structuredOutputsOf } from './structured.js';
import { CompletionLogprobsBuilder, concatCompletionLogprobs, promptLogprobsWire, requestTokenTexts, type TokenText } from './logprobs.js';
import type { CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse, UsageInfo } from './protocol.js';
import { completionSamplingInit, echoOnly } from './sampling.js';
import { sseResponse } from './sse.js';

/** The request's identity: the response id and the client's disconnect signal. */
export interface RequestMeta {
  requestId: string;
  signal: AbortSignal;
  /** The server's shutdown signal (streams end with an error event when it aborts), if it has one. */
  shutdown?: AbortSignal;
  /**
   * Why the server ended this request before it finished (shutdown: 503, request timeout: 408), or null: a body is
   * then that error, and a stream ends with it as an error event before `[DONE]`.
   */
  stopped?: () => HttpError | null;
}

/** One choice being assembled from deltas. */
class ChoiceState {
  text = '';
  numTokens = 0;
  logprobs: CompletionLogprobs | null = null;
  finishReason: string | null = null;
  stopReason: string | number | null = null;
  started = false;
  /** Generated ids (return_token_ids), and the prompt's logprobs once computed (prompt_logprobs). */
  tokenIds: number[] = [];
  promptLogprobs: RequestOutput['promptLogprobs'] = null;
  constructor(readonly builder: CompletionLogprobsBuilder | null) {}
}

function promptsOf(ctx: ServerContext, body: CompletionRequest): PromptInput[] {
  const p = body.prompt;
  const list: (string | number[])[] = typeof p === 'string' ? [p] : typeof p[0] === 'number' ? [p as number[]] : (p as (string | number[])[]);
  checkPromptChars(ctx, stringChars(list), 'prompt');
  return list.map((x) => {
    if (typeof x !== 'string') return { promptTokenIds: x };
    // vLLM: add_special_tokens (default true) decides whether BOS is added to text prompts.
    return body.add_special_tokens === false ? { prompt: x, promptTokenIds: ctx.tokenizer.encode(x, { addSpecialTokens: false }) } : x;
  });
}

/** Turns engine deltas into choice deltas; shared by the streaming and the joined response. */
class CompletionAssembler {
  readonly choices = new Map<number, ChoiceState>();
  readonly n: number;
  private readonly text: TokenText;
  /** echo with max_tokens 0: the prompt alone, the token computed for it dropped. */
  private readonly echoOnly: boolean;
  constructor(
    private readonly ctx: ServerContext,
    private readonly body: CompletionRequest,
    readonly batch: PreparedBatch,
  ) {
    this.n = batch.beam ? batch.beam.beamWidth : batch.prepared[0].params.n;
    this.text = requestTokenTexts(ctx.tokenizer, body.return_tokens_as_token_ids ?? ctx.returnTokensAsTokenIds);
    this.echoOnly = echoOnly(body);
  }

  /** The delta of each choice that `t` advanced: text (with the echoed prompt first), logprobs, finish. */
  *deltas(t: TaggedOutput): Generator<{ state: ChoiceState; choice: CompletionChoice; index: number }> {
    const { out } = t;
    const k = this.body.logprobs;
    for (const o of out.outputs) {
      const index = t.prompt * this.n + o.index;
      let s = this.choices.get(index);
      if (!s) {
        const prev = this.body.echo ? null : (out.promptTokenIds.at(-1) ?? null);
        s = new ChoiceState(k != null ? new CompletionLogprobsBuilder(k, this.text, prev) : null);
        this.choices.set(index, s);
      }
      let text = o.text;
      let logprobs: CompletionLogprobs | null = null;
      const first = !s.started;
      if (!s.started) {
        s.started = true;
        if (this.body.echo) {
          text = (out.prompt ?? this.ctx.tokenizer.decode(out.promptTokenIds)) + text;
          if (s.builder) logprobs = s.builder.build(out.promptTokenIds, out.promptLogprobs ?? []);
        }
      }
      if (this.echoOnly) text = text.slice(0, text.length - o.text.length);
      else if (s.builder && o.logprobs) logprobs = concatCompletionLogprobs(logprobs, s.builder.build(o.tokenIds, o.logprobs, this.body.logprob_token_ids));
      const tokenIds = this.echoOnly ? [] : o.tokenIds;
      s.text += text;
      s.numTokens += o.tokenIds.length;
      s.tokenIds.push(...tokenIds);
      if (out.promptLogprobs) s.promptLogprobs = out.promptLogprobs;
      if (logprobs) s.logprobs = concatCompletionLogprobs(s.logprobs, logprobs);
      if (o.finishReason !== null) {
        s.finishReason = o.finishReason;
        s.stopReason = o.stopReason;
      }
      const choice: CompletionChoice = { index, text, logprobs, finish_reason: o.finishReason, stop_reason: o.stopReason };
      // vLLM's return_token_ids: the prompt's ids with a choice's first chunk, each chunk's new ids.
      if (this.body.return_token_ids) {
        if (first) choice.prompt_token_ids = out.promptTokenIds;
        choice.token_ids = tokenIds;
      }
      yield { state: s, choice, index };
    }
  }

  usage(): UsageInfo {
    const prompt = this.batch.prepared.reduce((n, r) => n + r.promptTokenIds.length, 0);
    const completion = [...this.choices.values()].reduce((n, s) => n + s.numTokens, 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }
}

/** Handles one request: a JSON body when not streaming, else an SSE Response. */
export async function createCompletion(ctx: ServerContext, body: CompletionRequest, meta: RequestMeta): Promise<CompletionResponse | Response> {
  const model = checkModel(ctx, body.model);
  const init = completionSamplingInit(body);
  const specs = promptsOf(ctx, body).map((prompt) => ({ prompt, init, maxTokensExplicit: body.max_tokens != null }));
  const id = `cmpl-${meta.requestId}`;
  const batch = prepareBatch(ctx, specs, `${id}-${ctx.nextSeq()}`, {
    useBeamSearch: body.use_beam_search ?? false,
    lengthPenalty: body.length_penalty ?? null,
    priority: body.priority ?? 0,
    truncationSide: body.truncation_side,
  });
  await compileGrammars(ctx, batch, structuredOutputsOf(body)?.param ?? 'structured_outputs');
  const created = unixTime();
  const asm = new CompletionAssembler(ctx, body, batch);
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (meta.signal.aborted) abort();
  meta.signal.addEventListener('abort', abort, { once: true });
  const outputs = runBatch(ctx, batch, controller.signal);

  if (!body.stream) {
    try {
      for await (const t of outputs) for (const _ of asm.deltas(t));
    } finally {
      meta.signal.removeEventListener('abort', abort);
    }
    const stopped = meta.stopped?.();
    if (stopped) throw stopped;
    const choices: CompletionChoice[] = [...asm.choices.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([index, s]) => {
        const choice: CompletionChoice = { index, text: s.text, logprobs: s.logprobs, finish_reason: s.finishReason, stop_reason: s.stopReason };
        if (s.promptLogprobs) choice.prompt_logprobs = promptLogprobsWire(s.promptLogprobs);
        if (body.return_token_ids) {
          choice.prompt_token_ids = batch.prepared[Math.floor(index / asm.n)].promptTokenIds;
          choice.token_ids = s.tokenIds;
        }
        return choice;
      });
    return { id, object: 'text_completion', created, model, choices, usage: asm.usage() };
  }

  const includeUsage = body.stream_options?.include_usage ?? false;
  const continuousUsage = includeUsage && (body.stream_options?.continuous_usage_stats ?? false);
  const promptLen = (i: number) => batch.prepared[Math.floor(i / asm.n)].promptTokenIds.length;
  async function* chunks(): AsyncGenerator<unknown> {
    try {
      for await (const t of outputs) {
        for (const { state, choice, index } of asm.deltas(t)) {
          if (choice.text === '' && choice.finish_reason === null && choice.logprobs === null && !choice.prompt_token_ids) continue;
          const chunk: Record<string, unknown> = { id, object: 'text_completion', created, model, choices: [choice] };
          if (continuousUsage) {
            const p = promptLen(index);
            chunk.usage = { prompt_tokens: p, completion_tokens: state.numTokens, total_tokens: p + state.numTokens };
          }
          yield chunk;
        }
      }
      if (includeUsage) yield { id, object: 'text_completion', created, model, choices: [], usage: asm.usage() };
    } finally {
      meta.signal.removeEventListener('abort', abort);
      await outputs.return(undefined);
    }
  }
  return sseResponse(chunks(), abort, meta.stopped);
}
