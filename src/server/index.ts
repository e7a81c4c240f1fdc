/**
 * webgpu-llm's OpenAI-compatible server, platform-free: `createApp(...).fetch` is a `(Request) => Promise<Response>`
 * handler for Deno, Bun and edge workers; bindings/node/server.ts puts it on node:http.
 *
 * @example
 * import { LLM } from 'webgpu-llm';
 * import { createApp } from 'webgpu-llm/server';
 * const app = createApp({ llm: await LLM.create(), servedModelName: 'tinystories' });
 * const res = await app.fetch(new Request('http://localhost/v1/completions', {
 *   method: 'POST', body: JSON.stringify({ model: 'tinystories', prompt: 'Once upon a time', max_tokens: 16 }),
 * }));
 */
export { createApp, type ServerOptions } from './app.js';
export { HttpError, type ErrorBody } from './errors.js';
export { ServerMetrics } from './metrics.js';
export type * from './protocol.js';
