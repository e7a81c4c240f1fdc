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
}

/** Starts the server; resolves once it listens. */
export function serve(options: ServeOptions): Promise<NodeServer> {
  const { host = '127.0.0.1', port = 8000, ...appOptions } = options;
  const app = createApp(appOptions);
  return new Promise((resolve, reject) => {
    // overrideGlobalObjects: false keeps Node's own Request/Response globals (the process may also be a client).
    const server = serveNode({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false }) as Server;
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
      });
    });
  });
}
