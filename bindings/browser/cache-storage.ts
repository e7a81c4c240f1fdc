/**
 * Hub downloads kept in the browser's Cache API (window and workers alike), keyed by the hub's own URLs:
 *
 *   {endpoint}/{repo}/resolve/{commit}/{file}   the file (a 200 response; X-Hub-Absent: 1 when it does not exist)
 *   {endpoint}/{repo}/refs/{revision}           the commit the revision last resolved to (text)
 *
 * A download streams into cache.put(), which stores an entry only when the whole body arrived (a broken stream
 * rejects the put and leaves nothing), so there is no partial file to resume: an interrupted download restarts.
 * Files are read back as Blobs, which the browser keeps on disk, by slices: no step holds a whole file in memory.
 * Blobs are not shared between commits (a file that did not change is downloaded again for a new commit).
 */
import { ModelFileError } from '../../src/errors.js';
import type { ByteSource } from '../../src/platform.js';
import type { BlobWriter, CachedFile, HubCache } from '../../src/sources/hub-source.js';

/** The Cache Storage name used unless another is given. */
export const DEFAULT_CACHE_NAME = 'webgpu-llm-hub';

/** A Blob read by slices. */
export class BlobByteSource implements ByteSource {
  constructor(
    readonly name: string,
    private readonly blob: Blob,
  ) {}

  get size(): number {
    return this.blob.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
}

/**
 * A HubCache over Cache Storage; `open()` gives null where the Cache API is missing (an insecure http: page), and
 * hub files are then read in place.
 *
 * @example
 *   const cache = await CacheStorageHubCache.open('https://huggingface.co');
 *   const model = new HubModelSource('org/name', { cache });
 */
export class CacheStorageHubCache implements HubCache {
  private constructor(
    private readonly cache: Cache,
    readonly name: string,
    private readonly endpoint: string,
  ) {}

  static async open(endpoint: string, cacheName = DEFAULT_CACHE_NAME): Promise<CacheStorageHubCache | null> {
    const storage = (globalThis as { caches?: CacheStorage }).caches;
    if (!storage) return null;
    try {
      return new CacheStorageHubCache(await storage.open(cacheName), `Cache Storage '${cacheName}'`, endpoint.replace(/\/+$/, ''));
    } catch {
      return null; // e.g. storage blocked by the user's settings
    }
  }

  private fileKey(repo: string, commit: string, file: string): string {
    return `${this.endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  async getRef(repo: string, revision: string): Promise<string | null> {
    const res = await this.cache.match(`${this.endpoint}/${repo}/refs/${encodeURIComponent(revision)}`);
    return res ? (await res.text()).trim() || null : null;
  }

  async setRef(repo: string, revision: string, commit: string): Promise<void> {
    await this.cache.put(`${this.endpoint}/${repo}/refs/${encodeURIComponent(revision)}`, new Response(commit));
  }

  async lookup(repo: string, commit: string, file: string): Promise<CachedFile | 'absent' | null> {
    const key = this.fileKey(repo, commit, file);
    const res = await this.cache.match(key);
    if (!res) return null;
    if (res.headers.get('x-hub-absent') === '1') return 'absent';
    return this.cachedFile(key);
  }

  async markAbsent(repo: string, commit: string, file: string): Promise<void> {
    await this.cache.put(this.fileKey(repo, commit, file), new Response('', { headers: { 'X-Hub-Absent': '1' } }));
  }

  async linkBlob(): Promise<CachedFile | null> {
    return null;
  }

  async beginDownload(repo: string, commit: string, file: string, etag: string, size: number): Promise<BlobWriter> {
    const key = this.fileKey(repo, commit, file);
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size), 'X-Hub-Etag': etag };
    const put = this.cache.put(key, new Response(pipe.readable, { headers }));
    put.catch(() => {}); // awaited by commit(); a failure after abort() is expected
    const writer = pipe.writable.getWriter();
    return {
      resumeFrom: 0,
      restart: async () => {},
      write: (chunk) => writer.write(chunk),
      commit: async () => {
        await writer.close();
        await put;
        const res = await this.cache.match(key);
        const got = res ? (await res.blob()).size : -1;
        if (got !== size) {
          await this.cache.delete(key);
          throw new ModelFileError(key, `the cache holds ${got} bytes of it, expected ${size}; deleted, load again to retry`);
        }
        return this.cachedFile(key);
      },
      abort: async () => {
        await writer.abort(new Error('download aborted')).catch(() => {});
        await put.catch(() => {});
        await this.cache.delete(key); // in case the put had finished
      },
    };
  }

  private cachedFile(key: string): CachedFile {
    return {
      name: key,
      open: async () => {
        const res = await this.cache.match(key);
        if (!res) throw new ModelFileError(key, 'was evicted from the cache while loading; load again');
        return new BlobByteSource(key, await res.blob());
      },
    };
  }
}
