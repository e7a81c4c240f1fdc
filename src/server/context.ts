/** What every route handler reads: the engine, the served names, the metrics and the server's own limits. */
import type { Tokenizer } from '../tokenizer/index.js';
import { HttpError } from './errors.js';
import type { GenerateContext } from './generate.js';
import type { ServerMetrics } from './metrics.js';

export interface ServerContext extends GenerateContext {
  tokenizer: Tokenizer;
  /** The names clients may ask for; the first is the one responses carry. */
  modelNames: string[];
  /** The server's chat template (--chat-template), over the tokenizer's; null: the tokenizer's. */
  chatTemplate: string | null;
  /** GET /metrics: the engine's numbers in Prometheus text. */
  metrics: ServerMetrics;
  /** A fresh number per request, so that engine request ids stay unique when clients reuse X-Request-Id. */
  nextSeq(): number;
}

/** The model name a response carries; 404 for a name this server does not serve (absent: the default). */
export function checkModel(ctx: ServerContext, model: string | null | undefined): string {
  if (model === null || model === undefined || model === '') return ctx.modelNames[0];
  if (!ctx.modelNames.includes(model)) throw new HttpError(404, `The model \`${model}\` does not exist.`, 'model');
  return model;
}

/** Seconds since the epoch, as OpenAI's `created`. */
export const unixTime = (): number => Math.floor(Date.now() / 1000);
