import OpenAI, { type ClientOptions } from 'openai';
import { afterAll, beforeAll } from 'vitest';
import type { LLM, LLMOptions } from '../../bindings/node/index.js';
import { serve, type NodeServer, type ServeOptions } from '../../bindings/node/server.js';
import { loadLLM } from './llm.js';

/** What {@link serveForTests} starts for a test file; its fields are set once the file's beforeAll has run. */
export interface TestServer {
  llm: LLM;
  server: NodeServer;
  /** The official client on the server's /v1, without retries. */
  client: OpenAI;
  /** POSTs `body` (JSON-encoded, or a string as is) to `path` of the server. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
}

/**
 * Serves a test model for the describe block it is called in: before its tests, loads `model` (a folder, through
 * loadLLM with `llm` options) and `serve`s it on a free local port with `options`, then makes the client; after
 * them, closes the server and disposes the LLM.
 *
 * @example
 * const s = serveForTests(modelDir('qwen3-rand'), { servedModelName: ['qwen3-rand'] });
 * it('answers', async () => expect((await s.client.models.list()).data).toHaveLength(1));
 */
export function serveForTests(model: string, options: Omit<ServeOptions, 'llm'>, extra: { llm?: LLMOptions; client?: ClientOptions } = {}): TestServer {
  const s: TestServer = {
    llm: undefined as never,
    server: undefined as never,
    client: undefined as never,
    post: (path, body, headers = {}) =>
      fetch(`${s.server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
  };
  beforeAll(async () => {
    s.llm = await loadLLM(model, extra.llm);
    s.server = await serve({ llm: s.llm, host: '127.0.0.1', port: 0, ...options });
    s.client = new OpenAI({ baseURL: `${s.server.url}/v1`, apiKey: 'none', maxRetries: 0, ...extra.client });
  });
  afterAll(async () => {
    await s.server?.close();
    await s.llm?.dispose();
  });
  return s;
}
