/**
 * A Hugging Face hub on loopback for the hub and browser tests: model folders served in the hub's URL layout
 *
 *   HEAD/GET /{org}/{name}/resolve/{main|commit}/{file}
 *     small files: 200, ETag = git blob sha1, X-Repo-Commit, Content-Length, Range
 *     *.safetensors (LFS): 302 to the CDN, X-Linked-Etag = sha256, X-Linked-Size
 *     missing file: 404 X-Error-Code EntryNotFound; unknown repo: 401 RepoNotFound; unknown revision: 404
 *     gated repo without the token: 401 GatedRepo
 *     renamed repo: 307 to the new name (relative Location)
 *     *.gguf files are LFS too
 *   GET /api/models/{org}/{name}/revision/{rev}: { sha, siblings: [{ rfilename }] } (the files, subfolders included)
 *   GET http://127.0.0.2:{port}/cdn-lfs/{sha256}: the CDN, another host as the hub's is, with Range
 * with CORS headers on every answer, as the hub and its CDN send them,
 * plus static mounts (dist/, models/) for the browser tests. It counts requests and can break a download off.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, relative, sep } from 'node:path';
import { serveStatic, type Mounts } from '../../bindings/node/static-server.js';

export interface FakeHubOptions {
  /** Repo id -> model folder. */
  repos: Record<string, string>;
  /** Repo ids that answer 401 unless `Authorization: Bearer {token}` is sent. */
  gated?: string[];
  token?: string;
  /** Old repo id -> new repo id: answered with a relative 307. */
  renamed?: Record<string, string>;
  /** Static folders served beside the hub (URL prefix -> folder). */
  mounts?: Mounts;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  auth?: string;
}

interface Blob {
  path: string;
  size: number;
  etag: string;
  lfs: boolean;
}

/** The fake commit of a repo: sha1 of its id. */
export const fakeCommit = (repo: string): string => createHash('sha1').update(`commit:${repo}`).digest('hex');

export class FakeHub {
  /** Every request, in order. */
  readonly requests: LoggedRequest[] = [];
  /** The next GET whose path includes `match` sends `afterBytes` of the body, then the connection is cut. */
  breakNext: { match: string; afterBytes: number } | null = null;
  /** Ignore Range headers (answer 200 with the whole body), as some servers do. */
  ignoreRange = false;
  readonly url: string;
  /** The CDN's origin (127.0.0.2: another host, as a browser and huggingface_hub see it). */
  readonly cdnUrl: string;
  private readonly blobs = new Map<string, Blob>();
  private readonly lfsBySha = new Map<string, Blob>();

  private constructor(
    private readonly servers: Server[],
    private readonly opts: FakeHubOptions,
  ) {
    const port = (s: Server) => {
      const addr = s.address();
      return typeof addr === 'object' && addr ? addr.port : 0;
    };
    this.url = `http://127.0.0.1:${port(servers[0])}`;
    this.cdnUrl = `http://127.0.0.2:${port(servers[1])}`;
  }

  static async start(opts: FakeHubOptions): Promise<FakeHub> {
    let hub!: FakeHub;
    const listen = async (host: string) => {
      const server = createServer((req, res) => {
        hub.handle(req, res).catch((e: Error) => {
          if (!res.headersSent) res.writeHead(500).end(e.message);
        });
      });
      await new Promise<void>((ok) => server.listen(0, host, ok));
      return server;
    };
    hub = new FakeHub([await listen('127.0.0.1'), await listen('127.0.0.2')], opts);
    return hub;
  }

  async close(): Promise<void> {
    for (const s of this.servers) {
      s.closeAllConnections();
      await new Promise((ok) => s.close(ok));
    }
  }

  /** Requests to the hub and its CDN (static files not counted). */
  hubRequests(): LoggedRequest[] {
    return this.requests.filter((r) => /\/resolve\/|^\/cdn-lfs\//.test(r.path));
  }

  /** The sha256 (LFS etag) of a file of a repo. */
  sha256(repo: string, file: string): string {
    return createHash('sha256').update(readFileSync(join(this.opts.repos[repo], file))).digest('hex');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', this.url).pathname;
    this.requests.push({ method: req.method ?? 'GET', path, range: req.headers.range, auth: req.headers.authorization });
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'X-Repo-Commit, X-Linked-Etag, X-Linked-Size, ETag, Content-Range, Content-Length, X-Error-Code, X-Error-Message');
    if (req.method === 'OPTIONS') {
      return void res.writeHead(204, { 'Access-Control-Allow-Headers': 'Authorization, Range', 'Access-Control-Allow-Methods': 'GET, HEAD' }).end();
    }
    const cdn = /^\/cdn-lfs\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const blob = this.lfsBySha.get(cdn[1]);
      if (!blob) return void res.writeHead(404).end();
      return this.send(req, res, blob, { ETag: `"${blob.etag}"` });
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    if (api) {
      const folder = this.opts.repos[api[1]];
      if (!folder) return void res.writeHead(401, { 'X-Error-Code': 'RepoNotFound' }).end();
      const files = (await readdir(folder, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      const siblings = files.map((e) => ({ rfilename: relative(folder, join(e.parentPath, e.name)).split(sep).join('/') }));
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ sha: fakeCommit(api[1]), siblings }));
    }
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) {
      if (this.opts.mounts && (await serveStatic(this.opts.mounts, req, res))) return;
      return void res.writeHead(404).end('not found');
    }
    const [, repo, revision, fileEnc] = m;
    const file = decodeURIComponent(fileEnc);
    const renamed = this.opts.renamed?.[repo];
    if (renamed) {
      return void res.writeHead(307, { Location: `/${renamed}/resolve/${revision}/${fileEnc}` }).end();
    }
    const folder = this.opts.repos[repo];
    if (!folder) return void res.writeHead(401, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' }).end();
    if (this.opts.gated?.includes(repo) && req.headers.authorization !== `Bearer ${this.opts.token}`) {
      return void res.writeHead(401, { 'X-Error-Code': 'GatedRepo', 'X-Error-Message': `Access to model ${repo} is restricted.` }).end();
    }
    const commit = fakeCommit(repo);
    if (revision !== 'main' && revision !== commit) {
      return void res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound', 'X-Error-Message': 'Invalid rev id' }).end();
    }
    const blob = file.split('/').includes('..') ? null : await this.blob(join(folder, file));
    if (!blob) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': commit }).end();
    if (blob.lfs) {
      return void res
        .writeHead(302, {
          Location: `${this.cdnUrl}/cdn-lfs/${blob.etag}`,
          'X-Repo-Commit': commit,
          'X-Linked-Etag': `"${blob.etag}"`,
          'X-Linked-Size': blob.size,
          ETag: `"${createHash('sha1').update(`pointer:${blob.etag}`).digest('hex')}"`,
          'Content-Length': 0,
        })
        .end();
    }
    return this.send(req, res, blob, { ETag: `"${blob.etag}"`, 'X-Repo-Commit': commit });
  }

  private async blob(path: string): Promise<Blob | null> {
    const known = this.blobs.get(path);
    if (known) return known;
    try {
      if (!(await stat(path)).isFile()) return null;
    } catch {
      return null;
    }
    const bytes = await readFile(path);
    const lfs = path.endsWith('.safetensors') || path.endsWith('.gguf');
    const etag = lfs
      ? createHash('sha256').update(bytes).digest('hex')
      : createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    const blob = { path, size: bytes.length, etag, lfs };
    this.blobs.set(path, blob);
    if (lfs) this.lfsBySha.set(etag, blob);
    return blob;
  }

  private async send(req: IncomingMessage, res: ServerResponse, blob: Blob, headers: Record<string, string>): Promise<void> {
    const bytes = await readFile(blob.path);
    let start = 0;
    const range = this.ignoreRange ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let end = bytes.length - 1;
    if (range) {
      start = Number(range[1]);
      if (range[2] !== '') end = Math.min(end, Number(range[2]));
      if (start > end) return void res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
      res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${bytes.length}` });
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': bytes.length, 'Accept-Ranges': 'bytes' });
    }
    if (req.method === 'HEAD') return void res.end();
    const body = bytes.subarray(start, end + 1);
    const brk = this.breakNext;
    if (brk && new URL(req.url ?? '/', this.url).pathname.includes(brk.match)) {
      this.breakNext = null;
      res.write(body.subarray(0, brk.afterBytes));
      // Let the bytes leave, then cut the connection mid-body.
      await new Promise((ok) => setTimeout(ok, 50));
      res.socket?.destroy();
      return;
    }
    res.end(body);
  }
}
