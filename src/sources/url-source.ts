/**
 * A model folder behind a URL prefix, read with fetch: small files whole, safetensors by HTTP Range requests so
 * that no step holds a whole shard in memory. Works in browsers, workers, Deno, Bun and Node alike.
 */
import { ModelFileError } from '../errors.js';
import type { ByteSource, ModelSource } from '../platform.js';

export interface UrlSourceOptions {
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  fetch?: typeof fetch;
}

/** One file behind a URL, read with HTTP Range requests (a server that ignores Range is handled, if slowly). */
export class UrlByteSource implements ByteSource {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly opts: UrlSourceOptions,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    const f = this.opts.fetch ?? fetch;
    const res = await f(this.name, { headers: { ...this.opts.headers, Range: `bytes=${offset}-${end - 1}` } });
    if (res.status !== 206 && res.status !== 200) throw new ModelFileError(this.name, `HTTP ${res.status} reading bytes ${offset}-${end - 1}`);
    const buf = new Uint8Array(await res.arrayBuffer());
    // A server that ignores Range sends the whole file.
    return res.status === 200 ? buf.subarray(offset, end) : buf;
  }
}

export class UrlModelSource implements ModelSource {
  readonly name: string;

  constructor(base: string | URL, private readonly opts: UrlSourceOptions = {}) {
    this.name = String(base).replace(/\/?$/, '/');
  }

  private url(file: string): string {
    return new URL(file, this.name).href;
  }

  private fetch(file: string, init?: RequestInit): Promise<Response> {
    const f = this.opts.fetch ?? fetch;
    return f(this.url(file), { ...init, headers: { ...this.opts.headers, ...(init?.headers as Record<string, string>) } });
  }

  async exists(file: string): Promise<boolean> {
    const res = await this.fetch(file, { method: 'HEAD' });
    return res.ok;
  }

  async readText(file: string): Promise<string> {
    const res = await this.fetch(file);
    if (!res.ok) throw new ModelFileError(this.url(file), res.status === 404 ? 'not found' : `HTTP ${res.status}`);
    return res.text();
  }

  async open(file: string): Promise<ByteSource> {
    const res = await this.fetch(file, { method: 'HEAD' });
    if (!res.ok) throw new ModelFileError(this.url(file), res.status === 404 ? 'not found' : `HTTP ${res.status}`);
    const size = Number(res.headers.get('content-length'));
    if (!Number.isFinite(size)) throw new ModelFileError(this.url(file), 'the server sent no Content-Length');
    return new UrlByteSource(this.url(file), size, this.opts);
  }
}
