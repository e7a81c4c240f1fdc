/**
 * The OpenAI-compatible server on node:http: a thin adapter (@hono/node-server) over the platform-free app of
 * src/server. A client that disconnects aborts its request's AbortSignal, which aborts its engine request.
 *
 * @example
 * import { LLM } from 'webgpu-llm';
 * import { serve } from 'webgpu-llm/server';
 * const server = await serve({ llm: await LLM.create(), host: '127.0.0.1', port: 8000 });
 * console.log(server.url);   // http://127.0.0.1:8000 ; OpenAI clients use `${server.url}/v1`
 * await server.close();
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve as serveNode } from '@hono/node-server';
import { createApp, type ServerOptions } from '../../src/server/index.js';
import './index.js'; // the Node platform (Dawn, local model folders) for the LLM being served

export * from '../../src/server/index.js';

export interface ServeOptions extends ServerOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 8000; 0 picks a free one). */
  port?: number;
}

export interface NodeServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  server: Server;
  /** Stops listening and ends open connections (streams included). */
  close(): Promise<void>;
  /**
   * Graceful stop (SIGTERM): stop accepting connections, let running requests finish for up to `graceMs`, then
   * abort the rest (streams end with an error event and `[DONE]`) and close every connection.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** Starts the server; resolves once it listens. */
export function serve(options: ServeOptions): Promise<NodeServer> {
  const { host = '127.0.0.1', port = 8000, ...appOptions } = options;
  const stopping = new AbortController();
  const shutdownSignal = appOptions.shutdownSignal ? AbortSignal.any([appOptions.shutdownSignal, stopping.signal]) : stopping.signal;
  const app = createApp({ ...appOptions, shutdownSignal });
  return new Promise((resolve, reject) => {
    // overrideGlobalObjects: false keeps Node's own Request/Response globals (the process may also be a client).
    const server = serveNode({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false }) as Server;
    // Responses not yet finished (a stream is one until its last byte), so that shutdown knows when it may close.
    let active = 0;
    let idle: (() => void) | null = null;
    server.on('request', (_req, res) => {
      active++;
      res.once('close', () => {
        if (--active === 0) idle?.();
      });
    });
    const drained = (ms: number) =>
      new Promise<void>((done) => {
        if (active === 0) return done();
        const timer = setTimeout(done, ms);
        idle = () => {
          clearTimeout(timer);
          done();
        };
      });
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      const shown = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shown}:${bound}`,
        port: bound,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
        shutdown: async (graceMs: number) => {
          const closed = new Promise<void>((done) => server.close(() => done()));
          server.closeIdleConnections(); // keep-alive sockets with no request in flight
          await drained(graceMs);
          stopping.abort(); // the rest: engine requests aborted, streams end with an error event and [DONE]
          await drained(1000);
          server.closeAllConnections();
          await closed;
        },
      });
    });
  });
}
