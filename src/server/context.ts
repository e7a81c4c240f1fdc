/** What every route handler reads: the engine, the served names, the metrics and the server's own limits. */
import type { RenderBudget } from '../chat/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ReasoningParser } from '../tool-calls/reasoning-parsers.js';
import type { ToolParser } from '../tool-calls/tool-parsers.js';
import { HttpError } from './errors.js';
import type { GenerateContext } from './generate.js';
import type { ServerMetrics } from './metrics.js';
import type { ResponseStore } from './responses-store.js';

export interface ServerContext extends GenerateContext {
  tokenizer: Tokenizer;
  /** The names clients may ask for; the first is the one responses carry. */
  modelNames: string[];
  /** The server's chat template (--chat-template), over the tokenizer's; null: the tokenizer's. */
  chatTemplate: string | null;
  /** GET /metrics: the engine's numbers in Prometheus text. */
  metrics: ServerMetrics;
  /** The most characters of prompt text (all prompts of a request, or all message strings) tokenized for one request. */
  maxPromptChars: number;
  /** Whether a request may bring its own chat_template (--trust-request-chat-template). */
  trustRequestChatTemplate: boolean;
  /** Bounds on every chat template render (undefined fields: the defaults). */
  templateBudget: RenderBudget;
  /** tool_choice 'auto': the --tool-call-parser (with --enable-auto-tool-choice), or null: calls stay text. */
  toolParser: ToolParser | null;
  /** The --reasoning-parser, or null. */
  reasoningParser: ReasoningParser | null;
  /** --return-tokens-as-token-ids: logprobs name tokens `token_id:N` unless a request says otherwise. */
  returnTokensAsTokenIds: boolean;
  /** The Responses API store (VLLM_ENABLE_RESPONSES_API_STORE), or null: responses are not kept. */
  responsesStore: ResponseStore | null;
  /** A fresh number per request, so that engine request ids stay unique when clients reuse X-Request-Id. */
  nextSeq(): number;
}

/** The model name a response carries; 404 for a name this server does not serve (absent: the default). */
export function checkModel(ctx: ServerContext, model: string | null | undefined): string {
  if (model === null || model === undefined || model === '') return ctx.modelNames[0];
  if (!ctx.modelNames.includes(model)) throw new HttpError(404, `The model \`${model}\` does not exist.`, 'model');
  return model;
}

/**
 * 400 when a request's prompt text is longer than `ctx.maxPromptChars`: checked on characters before tokenizing,
 * so the tokenizer's work and wasm scratch stay bounded whatever the body limit allows.
 */
export function checkPromptChars(ctx: ServerContext, chars: number, param: string): void {
  if (chars > ctx.maxPromptChars) {
    throw new HttpError(400, `${param} has ${chars} characters, more than this server's limit of ${ctx.maxPromptChars} (--max-prompt-chars)`, param);
  }
}

/** Characters in every string inside `value` (chat messages, tools): what a template can put in the prompt. */
export function stringChars(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + stringChars(v), 0);
  if (typeof value === 'object' && value !== null) return Object.values(value).reduce((n: number, v) => n + stringChars(v), 0);
  return 0;
}

/** Seconds since the epoch, as OpenAI's `created`. */
export const unixTime = (): number => Math.floor(Date.now() / 1000);
