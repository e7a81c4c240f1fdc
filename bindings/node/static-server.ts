/**
 * A static file server for the demo page (`webgpu-llm demo`) and the browser tests: URL prefixes mapped to
 * folders, with Content-Length, HEAD and single-range `Range` requests (the browser's model source reads
 * safetensors by range). Loopback only by default; no directory listings; paths cannot leave their folder.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/** URL prefix (`/dist/`) -> folder. The longest matching prefix wins; `/` mounts a root. */
export type Mounts = Record<string, string>;

/**
 * Serves `mounts`; returns false (and sends nothing) when no mount holds the path, so a caller can chain handlers.
 *
 * @example
 *   createServer(async (req, res) => { if (!(await serveStatic({ '/': 'demo' }, req, res))) res.writeHead(404).end(); });
 */
export async function serveStatic(mounts: Mounts, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    return false;
  }
  const prefix = Object.keys(mounts)
    .filter((p) => pathname.startsWith(p))
    .sort((a, b) => b.length - a.length)[0];
  if (prefix === undefined) return false;
  const root = mounts[prefix];
  let path = normalize(join(root, pathname.slice(prefix.length)));
  if (path !== normalize(root) && !path.startsWith(normalize(root).replace(/\/?$/, sep))) return false;
  let size: number;
  try {
    let st = await stat(path);
    if (st.isDirectory()) {
      path = join(path, 'index.html');
      st = await stat(path);
    }
    if (!st.isFile()) return false;
    size = st.size;
  } catch {
    return false;
  }
  const headers: Record<string, string | number> = {
    'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  if (range && (range[1] !== '' || range[2] !== '')) {
    if (range[1] === '') start = Math.max(0, size - Number(range[2]));
    else {
      start = Number(range[1]);
      if (range[2] !== '') end = Math.min(end, Number(range[2]));
    }
    if (start > end || start >= size) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return true;
    }
    res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
  } else {
    res.writeHead(200, { ...headers, 'Content-Length': size });
  }
  if (req.method === 'HEAD' || size === 0) res.end();
  else createReadStream(path, { start, end }).pipe(res);
  return true;
}

/**
 * Starts a static server on `host:port` (port 0: any free one) and resolves once it listens; `/` redirects to
 * `home` when given, and a mount's prefix without its slash (`/demo`) to the prefix (`/demo/`).
 *
 * @example
 *   const { server, url } = await startStaticServer({ '/': 'demo', '/dist/': 'dist' });
 */
export async function startStaticServer(mounts: Mounts, port = 0, host = '127.0.0.1', home?: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (home && (req.url === '/' || req.url === '')) return void res.writeHead(302, { Location: home }).end();
    // A mount's folder named without its trailing slash (/demo): redirect, so the page's relative URLs resolve.
    const [path, query] = (req.url ?? '').split(/\?(.*)/s, 2);
    if (path.length > 1 && `${path}/` in mounts) return void res.writeHead(301, { Location: `${path}/${query === undefined ? '' : `?${query}`}` }).end();
    serveStatic(mounts, req, res).then(
      (served) => {
        if (!served) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      },
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}/` };
}
