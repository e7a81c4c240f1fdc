/**
 * The OpenAI-compatible server as a Hono app: Web-standard `fetch(Request) -> Response`, so the same routes run in
 * Node (bindings/node/server.ts), Deno, Bun and edge workers. Routes and bodies follow vLLM's server
 * (vllm/entrypoints/openai/api_server.py).
 */
import { Hono, type Context } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import { version } from '../../package.json';
import type { LLM } from '../llm.js';
import type { SamplingParamsInit } from '../sampling-params.js';
import { createChatCompletion } from './chat.js';
import { createCompletion, type RequestMeta } from './completions.js';
import { unixTime, type ServerContext } from './context.js';
import { errorBody, HttpError, toHttpError } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { REASONING_PARSERS } from '../tool-calls/reasoning-parsers.js';
import { TOOL_PARSERS } from '../tool-calls/tool-parsers.js';
import { ChatCompletionRequest, CompletionRequest, DetokenizeRequest, TokenizeRequest } from './protocol.js';
import { detokenize, tokenize } from './tokenize.js';
import { cancelResponse, createResponse, deleteResponse, retrieveResponse } from './responses.js';
import { ResponseStore, type ResponseStoreLimits } from './responses-store.js';
import { ResponsesRequest } from './responses-protocol.js';

export interface ServerOptions {
  /** The model to serve; requests wait for `llm.ready`. */
  llm: LLM;
  /** The name(s) clients use in `model`; the first is the one responses carry (default: the LLM's `model`). */
  servedModelName?: string | string[];
  /** When set and not empty, `/v1/*` requires `Authorization: Bearer <apiKey>` (vLLM's --api-key / VLLM_API_KEY). */
  apiKey?: string;
  /** The longest prompt + output the server accepts (at most the engine's; default the engine's). */
  maxModelLen?: number;
  /** A Jinja chat template used instead of the tokenizer's (vLLM's --chat-template). */
  chatTemplate?: string;
  /**
   * Accept a request's own `chat_template` (vLLM's --trust-request-chat-template). Default false: a template is
   * code, and requests carrying one get 400.
   */
  trustRequestChatTemplate?: boolean;
  /** Evaluation steps one chat template render may take, any template (default 1,000,000); past it, 400. */
  chatTemplateMaxSteps?: number;
  /** Milliseconds one chat template render may take (default 1000); past it, 400. */
  chatTemplateTimeoutMs?: number;
  /** Sampling defaults under the client's fields (vLLM's --generation-config DIR); the model's still fill the rest. */
  generationDefaults?: SamplingParamsInit;
  /** Largest request body in bytes (default 8 MiB); larger ones get 413, chunked or not. */
  maxBodyBytes?: number;
  /**
   * Origins allowed to call the server from a browser (vLLM's --allowed-origins; '*' for any): CORS preflights
   * are answered and responses carry Access-Control-Allow-Origin. Unset: no CORS headers, and OPTIONS is a plain
   * 204 naming the route's methods.
   */
  allowedOrigins?: string[];
  /**
   * The most prompt characters one request may send to the tokenizer (all its prompts, or all its messages'
   * strings); longer ones get 400 before tokenizing. Default 32 per token of the model length: no vocabulary's
   * tokens average that many characters, so a prompt past it could not fit the model anyway.
   */
  maxPromptChars?: number;
  /**
   * Milliseconds one generation request may run, queueing included (--request-timeout, in seconds); past it the
   * request alone is aborted, freeing its KV blocks, and answers 408 (a stream: an error event, then `[DONE]`).
   * Default: no limit.
   */
  requestTimeoutMs?: number;
  /**
   * Aborted when the server shuts down for good (bindings/node's `shutdown`): running requests are aborted, and
   * streams end with an error event and `[DONE]`.
   */
  shutdownSignal?: AbortSignal;
  /**
   * vLLM's --enable-auto-tool-choice with --tool-call-parser NAME: for tool_choice 'auto', calls are parsed out of
   * the text into message.tool_calls ('hermes', 'llama3_json', 'mistral', 'pythonic'). Without them they stay text.
   */
  enableAutoToolChoice?: boolean;
  toolCallParser?: string;
  /** vLLM's --reasoning-parser NAME ('qwen3', 'deepseek_r1'): the think block goes to the message's `reasoning`. */
  reasoningParser?: string;
  /**
   * vLLM's --return-tokens-as-token-ids: logprobs name tokens as `token_id:N` (tokens that are not valid UTF-8 on
   * their own stay identifiable); a request's `return_tokens_as_token_ids` overrides it.
   */
  returnTokensAsTokenIds?: boolean;
  /**
   * The Responses API store (vLLM's VLLM_ENABLE_RESPONSES_API_STORE=1): true, or its bounds (default 1024 responses,
   * 64 MiB). Kept responses serve previous_response_id, GET / DELETE /v1/responses/{id}, background and cancel.
   * Default off: `store` is answered false, as vLLM.
   */
  responsesStore?: boolean | ResponseStoreLimits;
  /** Called with errors that became a 500 (the library itself never logs). */
  onInternalError?: (err: unknown) => void;
}

type Env = { Variables: { requestId: string } };

/**
 * Creates the server's app. `app.fetch` is the fetch-style handler.
 *
 * @example
 * const app = createApp({ llm: await LLM.create(), servedModelName: 'tinystories' });
 * export default { fetch: app.fetch };                       // Deno, Bun, Workers
 * const res = await app.fetch(new Request('http://x/v1/models'));
 */
export function createApp(options: ServerOptions): Hono<Env> {
  const { llm } = options;
  const names = options.servedModelName === undefined ? [llm.options.model ?? 'default'] : [options.servedModelName].flat();
  if (names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) throw new TypeError('servedModelName must be a non-empty name or list of names');
  if (options.enableAutoToolChoice && !options.toolCallParser) throw new TypeError('enableAutoToolChoice needs toolCallParser (--tool-call-parser NAME)');
  const toolParser = options.toolCallParser ? TOOL_PARSERS[options.toolCallParser] : null;
  if (toolParser === undefined) throw new TypeError(`unknown tool call parser '${options.toolCallParser}' (one of ${Object.keys(TOOL_PARSERS).join(', ')})`);
  const reasoningParser = options.reasoningParser ? REASONING_PARSERS[options.reasoningParser] : null;
  if (reasoningParser === undefined) throw new TypeError(`unknown reasoning parser '${options.reasoningParser}' (one of ${Object.keys(REASONING_PARSERS).join(', ')})`);
  const rs = options.responsesStore;
  const responsesStore = rs ? new ResponseStore(rs === true ? {} : rs) : null;
  let ctx: ServerContext | null = null;
  const context = async (): Promise<ServerContext> => {
    if (ctx) return ctx;
    try {
      await llm.ready;
    } catch (err) {
      throw new HttpError(503, `the model failed to load: ${err instanceof Error ? err.message : String(err)}`);
    }
    const engine = llm.engine;
    // vLLM's --reasoning-parser also fills the engine's reasoning config (thinking_token_budget counts in it).
    if (reasoningParser?.reasoningStartStr && reasoningParser.reasoningEndStr) {
      engine.configureReasoning({ reasoningStartStr: reasoningParser.reasoningStartStr, reasoningEndStr: reasoningParser.reasoningEndStr });
    }
    const maxModelLen = Math.min(options.maxModelLen ?? Infinity, engine.runner.limits.maxModelLen);
    let seq = 0;
    ctx = {
      engine,
      tokenizer: engine.tokenizer,
      modelNames: names,
      maxModelLen,
      chatTemplate: options.chatTemplate ?? null,
      maxPromptChars: options.maxPromptChars ?? 32 * maxModelLen,
      trustRequestChatTemplate: options.trustRequestChatTemplate ?? false,
      templateBudget: { maxSteps: options.chatTemplateMaxSteps, timeoutMs: options.chatTemplateTimeoutMs },
      metrics: new ServerMetrics(names[0], engine),
      generationDefaults: options.generationDefaults ?? null,
      toolParser: options.enableAutoToolChoice ? toolParser : null,
      reasoningParser,
      returnTokensAsTokenIds: options.returnTokensAsTokenIds ?? false,
      responsesStore,
      nextSeq: () => seq++,
    };
    return ctx;
  };

  const app = new Hono<Env>();

  app.onError((err, c) => {
    const e = err instanceof HTTPException ? new HttpError(err.status, err.message || 'HTTP error') : toHttpError(err);
    if (e.status >= 500) options.onInternalError?.(err);
    return c.json(errorBody(e), e.status as 400);
  });
  app.notFound((c) => c.json(errorBody(new HttpError(404, `Not Found: ${c.req.method} ${c.req.path}`)), 404));

  // X-Request-Id: the client's id names the request (and its response id); either way it is echoed back.
  app.use('*', async (c, next) => {
    const id = c.req.header('x-request-id') || crypto.randomUUID();
    c.set('requestId', id);
    await next();
    c.res.headers.set('x-request-id', id);
  });

  // Before the API key: browsers send preflights without credentials.
  if (options.allowedOrigins !== undefined) {
    const origins = options.allowedOrigins;
    app.use('*', cors({ origin: origins.includes('*') ? '*' : origins, allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'] }));
  }
  app.options('*', (c) => {
    const allow = ROUTE_METHODS[c.req.path] ?? (/^\/v1\/responses\/[^/]+\/cancel$/.test(c.req.path) ? 'POST' : /^\/v1\/responses\/[^/]+$/.test(c.req.path) ? 'GET, DELETE' : undefined);
    if (allow === undefined) throw new HttpError(404, `Not Found: OPTIONS ${c.req.path}`);
    return c.body(null, 204, { allow: `${allow}, OPTIONS` });
  });

  // vLLM: an empty key (VLLM_API_KEY="") is no key, not a key nobody can send.
  if (options.apiKey !== undefined && options.apiKey !== '') {
    const expected = `Bearer ${options.apiKey}`;
    app.use('/v1/*', async (c, next) => {
      if (c.req.method === 'OPTIONS' || sameString(c.req.header('authorization') ?? '', expected)) return next();
      throw new HttpError(401, 'Unauthorized: a valid API key is required (Authorization: Bearer <key>)');
    });
  }

  const maxBody = options.maxBodyBytes ?? 8 << 20;
  const timeoutMs = options.requestTimeoutMs;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError(`requestTimeoutMs must be a positive number, got ${timeoutMs}`);
  const meta = (c: Context<Env>) => requestMeta(c, options.shutdownSignal, timeoutMs);
  const parseBody = <S extends z.ZodType>(c: Context<Env>, schema: S) => parseBodyAs(c, schema, maxBody);

  const health = async (c: Context<Env>) => {
    await context();
    return c.body(null, 200);
  };
  app.get('/health', health);
  // vLLM's SageMaker routes: /ping is /health; /invocations serves a chat or completion body by its shape.
  app.get('/ping', health);
  app.post('/ping', health);
  app.get('/version', (c) => c.json({ version }));
  app.get('/metrics', async (c) => {
    const s = await context();
    return c.text(s.metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.get('/v1/models', async (c) => {
    const s = await context();
    const created = unixTime();
    const root = modelRoot(llm.options.model, names[0]);
    const data = names.map((id) => ({ id, object: 'model', created, owned_by: 'vllm', root, parent: null, max_model_len: s.maxModelLen, permission: [] }));
    return c.json({ object: 'list', data });
  });
  app.post('/v1/completions', async (c) => {
    const body = await parseBody(c, CompletionRequest);
    const res = await createCompletion(await context(), body, meta(c));
    return res instanceof Response ? res : c.json(res);
  });
  app.post('/v1/chat/completions', async (c) => {
    const body = await parseBody(c, ChatCompletionRequest);
    const res = await createChatCompletion(await context(), body, meta(c));
    return res instanceof Response ? res : c.json(res);
  });
  app.post('/invocations', async (c) => {
    const text = await readJsonText(c.req.raw, maxBody);
    const json = parseJson(text);
    const isChat = 'messages' in json;
    if (!isChat && !('prompt' in json)) {
      throw new HttpError(400, "/invocations takes a chat completion body (with 'messages') or a completion body (with 'prompt')", null);
    }
    const s = await context();
    const res = isChat ? await createChatCompletion(s, validate(ChatCompletionRequest, json), meta(c)) : await createCompletion(s, validate(CompletionRequest, json), meta(c));
    return res instanceof Response ? res : c.json(res);
  });
  app.post('/v1/responses', async (c) => {
    const res = await createResponse(await context(), await parseBody(c, ResponsesRequest), meta(c));
    return res instanceof Response ? res : c.json(res);
  });
  app.get('/v1/responses/:id', async (c) => c.json(retrieveResponse(await context(), c.req.param('id'), c.req.query('stream') === 'true')));
  app.delete('/v1/responses/:id', async (c) => c.json(deleteResponse(await context(), c.req.param('id'))));
  app.post('/v1/responses/:id/cancel', async (c) => c.json(cancelResponse(await context(), c.req.param('id'))));
  app.post('/tokenize', async (c) => c.json(tokenize(await context(), await parseBody(c, TokenizeRequest))));
  app.post('/detokenize', async (c) => c.json(detokenize(await context(), await parseBody(c, DetokenizeRequest))));

  return app;
}

/**
 * A generation request's identity and signals: it is aborted when the client goes away, the server shuts down or
 * its time (--request-timeout) runs out; `stopped` says which of the server's reasons ended it.
 */
function requestMeta(c: Context<Env>, shutdown: AbortSignal | undefined, timeoutMs: number | undefined): RequestMeta {
  const deadline = timeoutMs !== undefined ? AbortSignal.timeout(timeoutMs) : undefined;
  const signals = [c.req.raw.signal, shutdown, deadline].filter((s): s is AbortSignal => s !== undefined);
  const signal = signals.length > 1 ? AbortSignal.any(signals) : c.req.raw.signal;
  const stopped = (): HttpError | null => {
    if (shutdown?.aborted) return new HttpError(503, 'the server is shutting down: this request was ended before it finished');
    if (deadline?.aborted) return new HttpError(408, `the request did not finish within this server's request timeout of ${timeoutMs! / 1000} s (--request-timeout)`);
    return null;
  };
  return { requestId: c.get('requestId'), signal, shutdown, stopped };
}

/**
 * /v1/models' `root`: the Hub repo id the model came from, else the served name. Never a local path: it would tell
 * any client the server's directory layout.
 */
function modelRoot(model: string | undefined, servedName: string): string {
  return model !== undefined && /^[\w][\w.-]*\/[\w][\w.-]*$/.test(model) && !model.includes('..') ? model : servedName;
}

/** Each route's methods, for OPTIONS (the routes above must be listed here). */
const ROUTE_METHODS: Record<string, string> = {
  '/health': 'GET',
  '/ping': 'GET, POST',
  '/invocations': 'POST',
  '/version': 'GET',
  '/metrics': 'GET',
  '/v1/models': 'GET',
  '/v1/completions': 'POST',
  '/v1/chat/completions': 'POST',
  '/v1/responses': 'POST',
  '/tokenize': 'POST',
  '/detokenize': 'POST',
};

/**
 * The body as text, at most `max` bytes (413 past it). Read from the stream itself, so chunked bodies (no
 * Content-Length) are counted as they arrive; a Content-Length above the limit is refused before reading. (Hono's
 * bodyLimit rebuilt the Request around the read bytes, which @hono/node-server's requests do not survive: 500.)
 */
async function readBody(req: Request, max: number): Promise<string> {
  const tooLarge = () => new HttpError(413, `the request body is larger than ${max} bytes`);
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > max) throw tooLarge();
  if (req.body === null) return '';
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      void reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/**
 * The body of a JSON request. vLLM refuses bodies sent as a form (its validate_json_request): a client that posts
 * JSON as `application/x-www-form-urlencoded` or `multipart/form-data` (curl -d without -H) gets 400, not a guess.
 * Other content types, or none, are read as JSON (fetch's text/plain default included).
 */
async function readJsonText(req: Request, maxBody: number): Promise<string> {
  const media = (req.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (media === 'application/x-www-form-urlencoded' || media === 'multipart/form-data') {
    throw new HttpError(400, `Unsupported Media Type: Only 'application/json' is allowed (got '${media}')`);
  }
  return readBody(req, maxBody);
}

function parseJson(text: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `the request body is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new HttpError(400, 'the request body must be a JSON object');
  return json as Record<string, unknown>;
}

/** Parses a JSON body (at most `maxBody` bytes) against a schema; 400 naming the first field at fault. */
async function parseBodyAs<S extends z.ZodType>(c: Context<Env>, schema: S, maxBody: number): Promise<z.infer<S>> {
  return validate(schema, parseJson(await readJsonText(c.req.raw, maxBody)));
}

function validate<S extends z.ZodType>(schema: S, json: unknown): z.infer<S> {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue.path.map(String).join('.');
    throw new HttpError(400, path ? `${path}: ${issue.message}` : issue.message, path || null);
  }
  return r.data;
}

/** String equality in time independent of where the strings differ (API keys). */
function sameString(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a.charCodeAt(i) || 0) ^ b.charCodeAt(i);
  return diff === 0;
}
