/**
 * Models named by Hugging Face repo id (`org/name`), read through the hub's file URLs
 *
 *   {endpoint}/{repo}/resolve/{revision}/{file}
 *
 * as Python's huggingface_hub reads them (`hf_hub_download`): a HEAD without following redirects gives the file's
 * commit (`X-Repo-Commit`), content hash (`X-Linked-Etag` for LFS files, else `ETag`), size (`X-Linked-Size`, else
 * `Content-Length`) and, for LFS files, a redirect to a CDN; a GET downloads the bytes into a HubCache (the Hugging
 * Face cache folder in Node, the Cache API in browsers) unless the file is there already. Once the first file has
 * named a commit, every later file is read at that commit, so that a push during a load cannot mix two versions.
 * Without a cache, files are read in place with HTTP Range requests. Sharded checkpoints need nothing here: the
 * loader reads `model.safetensors.index.json` and opens the shards it names.
 *
 * Web-standard APIs only (fetch, streams); the caches are ports implemented in bindings/.
 */
import { ModelFileError } from '../errors.js';
import type { ByteSource, DownloadProgress, ModelSource } from '../platform.js';
import { UrlByteSource } from './url-source.js';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/**
 * True for a Hugging Face repo id: `org/name`, each part of letters, digits, `-`, `_`, `.` (not starting or ending
 * with `-`/`.`, no `--` or `..`), at most 96 characters each. Single names (`gpt2`, legacy canonical repos) are
 * not taken as repo ids, since they read as local folders just as well.
 *
 * @example
 *   isRepoId('Qwen/Qwen2.5-0.5B-Instruct'); // true
 *   isRepoId('./models/x');                 // false
 */
export function isRepoId(s: string): boolean {
  const parts = s.split('/');
  return parts.length === 2 && parts.every((p) => /^[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9_])?$/.test(p) && !p.includes('--') && !p.includes('..'));
}

/** A 40-hex-digit git commit hash: a revision that never moves. */
export const isCommitHash = (s: string): boolean => /^[0-9a-f]{40}$/.test(s);

/** A file kept in a HubCache; every open() gives an independent ByteSource. */
export interface CachedFile {
  /** Where it lies, for messages (a path or cache key). */
  readonly name: string;
  open(): Promise<ByteSource>;
}

/** What a hub download writes into: bytes go to a temporary place, and only commit() makes them a cached file. */
export interface BlobWriter {
  /** Bytes already there from an interrupted download of the same blob (0: start from scratch). */
  readonly resumeFrom: number;
  /** Drops the bytes kept from an earlier attempt (the server ignored our Range request). */
  restart(): Promise<void>;
  write(chunk: Uint8Array): Promise<void>;
  /** Checks the size (and the hash where the etag is one), then stores the blob as the file it was begun for. */
  commit(): Promise<CachedFile>;
  /** Ends a failed download; what was written may be kept for a later resume, never as a cached file. */
  abort(): Promise<void>;
}

/**
 * Where hub downloads are kept, keyed as the Hugging Face cache is: refs (revision -> commit), files by commit,
 * blobs by etag, and markers for files known to be absent at a commit.
 */
export interface HubCache {
  /** Where the cache lies, for messages. */
  readonly name: string;
  /** The commit `revision` last resolved to, or null. */
  getRef(repo: string, revision: string): Promise<string | null>;
  setRef(repo: string, revision: string, commit: string): Promise<void>;
  /** `file` at `commit`: the cached file, 'absent' if recorded as missing there, null if the cache does not know. */
  lookup(repo: string, commit: string, file: string): Promise<CachedFile | 'absent' | null>;
  /** Records that `file` does not exist at `commit` (so offline loads know it too). */
  markAbsent(repo: string, commit: string, file: string): Promise<void>;
  /** Stores `file` at `commit` from a blob already cached under `etag` (another revision's copy); null if none. */
  linkBlob(repo: string, commit: string, file: string, etag: string): Promise<CachedFile | null>;
  /** Starts (or resumes) downloading `file` at `commit`: the blob `etag` of `size` bytes. */
  beginDownload(repo: string, commit: string, file: string, etag: string, size: number): Promise<BlobWriter>;
}

export interface HubSourceOptions {
  /** Branch, tag or commit. Default 'main'. */
  revision?: string;
  /** Default https://huggingface.co. */
  endpoint?: string;
  /** Sent as `Authorization: Bearer <token>` to the hub (never to the CDN it redirects to). */
  token?: string;
  /** Read only from `cache`; make no request. */
  offline?: boolean;
  /** Where downloads are kept; null reads files in place with Range requests (nothing is stored). */
  cache?: HubCache | null;
  onProgress?: (progress: DownloadProgress) => void;
  fetch?: typeof fetch;
}

/** What a HEAD of a file's resolve URL says about it (huggingface_hub's HfFileMetadata). */
interface FileMetadata {
  commit: string;
  /** Content hash: sha256 for LFS files, the git blob sha1 otherwise (quotes and `W/` removed). */
  etag: string;
  size: number;
  /** Where to GET the bytes: the CDN location for LFS files, else the resolve URL at the commit. */
  url: string;
}

/** A file of the repo, or why there is none: 'absent' (the hub or the cache says so), 'uncached' (offline). */
type Located = CachedFile | 'absent' | 'uncached';

/** Report progress at most every this many bytes (and always at the start and the end of a file). */
const PROGRESS_STEP = 256 * 1024;
/** Same-host redirects followed while resolving (renamed repos); another host is the CDN. */
const MAX_REDIRECTS = 5;

/**
 * A hub repository as a ModelSource.
 *
 * @example
 *   const model = new HubModelSource('Qwen/Qwen2.5-0.5B-Instruct', { revision: 'main', cache });
 *   const config = JSON.parse(await model.readText('config.json'));
 */
export class HubModelSource implements ModelSource {
  /** `{endpoint}/{repo}/resolve/{revision}`: with a file name appended, the URL a user can open. */
  readonly name: string;
  readonly revision: string;
  private readonly endpoint: string;
  private readonly cache: HubCache | null;
  private readonly fetchFn: typeof fetch;
  /** The commit the revision resolved to: from the first HEAD, the cache's ref, or the revision itself. */
  private commit: string | null;
  private readonly located = new Map<string, Promise<Located>>();

  constructor(
    readonly repo: string,
    private readonly opts: HubSourceOptions = {},
  ) {
    if (!isRepoId(repo)) throw new ModelFileError(repo, 'is not a Hugging Face repo id (expected "org/name")');
    this.revision = opts.revision ?? 'main';
    if (this.revision === '' || this.revision.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new ModelFileError(repo, `revision ${JSON.stringify(this.revision)} is not a branch, tag or commit name`);
    }
    this.endpoint = (opts.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
    this.cache = opts.cache ?? null;
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.commit = isCommitHash(this.revision) ? this.revision : null;
    this.name = `${this.endpoint}/${repo}/resolve/${this.revision}`;
    if (opts.offline && !this.cache) throw new ModelFileError(this.name, 'offline mode needs a cache to read from, and there is none');
  }

  async exists(file: string): Promise<boolean> {
    return typeof (await this.locate(file)) === 'object';
  }

  async readText(file: string): Promise<string> {
    const src = await this.open(file);
    try {
      return new TextDecoder().decode(await src.read(0, src.size));
    } finally {
      await src.close?.();
    }
  }

  async open(file: string): Promise<ByteSource> {
    const found = await this.locate(file);
    if (found === 'absent') throw new ModelFileError(this.fileUrl(file, this.revision), 'not found in the repository');
    if (found === 'uncached') throw this.offlineMiss(file);
    return found.open();
  }

  /**
   * The repository's files at the revision (the hub's model API: `GET {endpoint}/api/models/{repo}/revision/{rev}`,
   * its `siblings`). Offline, or when the hub cannot say, an error asks for the file by name.
   */
  async list(): Promise<string[]> {
    const ask = 'name the GGUF file (ggufFile, or a URL ending in .gguf)';
    if (this.opts.offline) throw new ModelFileError(this.name, `offline mode cannot list the repository's files: ${ask}`);
    const url = `${this.endpoint}/api/models/${this.repo}/revision/${encodeURIComponent(this.commit ?? this.revision)}`;
    const res = await this.fetchFn(url, { headers: this.authHeaders(url) });
    if (!res.ok) throw new ModelFileError(url, `HTTP ${res.status} listing the repository's files: ${ask}`);
    const body = (await res.json().catch(() => null)) as { siblings?: unknown } | null;
    const siblings = Array.isArray(body?.siblings) ? (body.siblings as { rfilename?: unknown }[]) : null;
    if (!siblings) throw new ModelFileError(url, `the answer has no list of files: ${ask}`);
    return siblings.slice(0, 100_000).map((f) => f?.rfilename).filter((f): f is string => typeof f === 'string');
  }

  /** The commit files are read at, once known. */
  get resolvedCommit(): string | null {
    return this.commit;
  }

  private locate(file: string): Promise<Located> {
    if (file === '' || file.startsWith('/') || file.includes('\\') || file.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      return Promise.reject(new ModelFileError(`${this.repo}/${file}`, 'is not a plain relative file name inside the repository'));
    }
    let p = this.located.get(file);
    if (!p) {
      p = this.opts.offline ? this.fromCache(file, true) : this.fromHub(file);
      this.located.set(file, p);
      p.catch(() => this.located.delete(file)); // a failure is not remembered: a later call tries again
    }
    return p;
  }

  /** `file` from the cache alone. Offline, a file the cache does not know is 'uncached'. */
  private async fromCache(file: string, offline: boolean): Promise<Located> {
    const cache = this.cache!;
    const commit = this.commit ?? (await cache.getRef(this.repo, this.revision));
    if (commit === null) {
      if (offline) throw this.offlineMiss(file, `revision '${this.revision}' was never downloaded`);
      return 'uncached';
    }
    this.commit = commit;
    return (await cache.lookup(this.repo, commit, file)) ?? 'uncached';
  }

  private async fromHub(file: string): Promise<Located> {
    // A pinned commit already in the cache needs no request (huggingface_hub does the same).
    if (this.cache && this.commit !== null && isCommitHash(this.revision)) {
      const hit = await this.cache.lookup(this.repo, this.commit, file);
      if (hit !== null) return hit;
    }
    let meta: FileMetadata | { missingAt: string | null };
    try {
      meta = await this.head(file);
    } catch (e) {
      // The hub cannot be reached: fall back to the cache, as huggingface_hub does.
      if (!(e instanceof TypeError) || !this.cache) throw e;
      const cached = await this.fromCache(file, false);
      if (cached !== 'uncached') return cached;
      throw new ModelFileError(this.fileUrl(file, this.revision), `cannot reach the hub (${describeFetchError(e)}) and the file is not in the cache at ${this.cache.name}`);
    }
    if ('missingAt' in meta) {
      const commit = this.commit ?? (meta.missingAt && isCommitHash(meta.missingAt) ? meta.missingAt : null);
      if (this.cache && commit !== null) await this.cache.markAbsent(this.repo, commit, file);
      return 'absent';
    }
    if (this.commit === null) {
      this.commit = meta.commit;
      if (this.cache && meta.commit !== this.revision) await this.cache.setRef(this.repo, this.revision, meta.commit);
    }
    if (!this.cache) return this.remote(file, meta);
    const hit = await this.cache.lookup(this.repo, meta.commit, file);
    if (hit !== null && hit !== 'absent') return hit;
    return (await this.cache.linkBlob(this.repo, meta.commit, file, meta.etag)) ?? this.download(file, meta, this.cache);
  }

  /** The resolve URL of `file` at `revision` (the commit once known). */
  private fileUrl(file: string, revision = this.commit ?? this.revision): string {
    const path = file.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/${this.repo}/resolve/${encodeURIComponent(revision)}/${path}`;
  }

  private authHeaders(url: string): Record<string, string> {
    const t = this.opts.token;
    return t && new URL(url).origin === new URL(this.endpoint).origin ? { Authorization: `Bearer ${t}` } : {};
  }

  /**
   * huggingface_hub's get_hf_file_metadata: HEAD the resolve URL without following the CDN redirect, since the
   * hub's own response carries the commit and hash. `missingAt` (the commit, where the hub says) when the file
   * does not exist in the repo.
   */
  private async head(file: string): Promise<FileMetadata | { missingAt: string | null }> {
    let url = this.fileUrl(file);
    let res: Response | undefined;
    for (let hop = 0; ; hop++) {
      // identity: Content-Length must be the file's size, not a compressed one (browsers ignore this header).
      const headers = { ...this.authHeaders(url), 'Accept-Encoding': 'identity' };
      res = await this.fetchFn(url, { method: 'HEAD', redirect: 'manual', headers });
      if (res.type === 'opaqueredirect') {
        // Browsers hide a redirect's headers: follow it, and take the commit from an earlier file if need be.
        res = await this.fetchFn(url, { method: 'HEAD', headers });
        break;
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) break;
      // A redirect on the same host is the hub's own (a renamed repo); another host is the CDN, whose response
      // would lack the hub's headers (huggingface_hub's rule).
      const next = new URL(location, url);
      if (next.hostname !== new URL(url).hostname || hop >= MAX_REDIRECTS) break;
      url = next.href;
    }
    const where = this.fileUrl(file, this.revision);
    const code = res.headers.get('x-error-code');
    // The hub answers 401 for a repo that does not exist (or that the token may not see) as for a gated one.
    if (code === 'RepoNotFound') {
      throw new ModelFileError(this.repo, `repository not found at ${this.endpoint} (if it is private or gated, set HF_TOKEN or the hfToken option)`);
    }
    if (code === 'RevisionNotFound') throw new ModelFileError(this.repo, `revision '${this.revision}' not found`);
    if (res.status === 404) return { missingAt: res.headers.get('x-repo-commit') };
    if (res.status === 401 || res.status === 403) {
      const why = res.headers.get('x-error-message') ?? (res.status === 401 ? 'authentication required' : 'access denied');
      throw new ModelFileError(where, `HTTP ${res.status} (${why}): the repository is gated or private; ${this.opts.token ? 'the token given has no access to it' : 'set HF_TOKEN or the hfToken option to a token with access'}`);
    }
    const redirected = res.status >= 300 && res.status < 400;
    if (!res.ok && !redirected) throw new ModelFileError(where, `HTTP ${res.status} from the hub`);
    const h = res.headers;
    const commit = h.get('x-repo-commit') ?? this.commit;
    const etag = normalizeEtag(h.get('x-linked-etag') ?? h.get('etag'));
    const size = Number(h.get('x-linked-size') ?? h.get('content-length') ?? NaN);
    if (commit === null || !isCommitHash(commit)) throw new ModelFileError(where, `the server sent no X-Repo-Commit header: is ${this.endpoint} a Hugging Face hub?`);
    if (etag === null) throw new ModelFileError(where, 'the server sent no ETag: cannot tell which version of the file this is');
    if (!Number.isSafeInteger(size) || size < 0) throw new ModelFileError(where, 'the server sent no usable file size (X-Linked-Size / Content-Length)');
    const location = redirected ? h.get('location') : null;
    return { commit, etag, size, url: location ? new URL(location, url).href : res.url && res.redirected ? res.url : this.fileUrl(file, commit) };
  }

  /** No cache: read the file in place (Range requests to the CDN or the resolve URL). */
  private remote(file: string, meta: FileMetadata): CachedFile {
    const headers = this.authHeaders(meta.url);
    return { name: this.fileUrl(file), open: async () => new UrlByteSource(meta.url, meta.size, { headers, fetch: this.fetchFn }) };
  }

  /** Downloads `file` into the cache, resuming an earlier partial download of the same blob where possible. */
  private async download(file: string, meta: FileMetadata, cache: HubCache): Promise<CachedFile> {
    const where = this.fileUrl(file);
    const writer = await cache.beginDownload(this.repo, meta.commit, file, meta.etag, meta.size);
    try {
      let loaded = writer.resumeFrom;
      const headers: Record<string, string> = { ...this.authHeaders(meta.url) };
      if (loaded > 0) headers.Range = `bytes=${loaded}-`;
      let res = await this.fetchFn(meta.url, { headers });
      if (loaded > 0 && res.status !== 206) {
        // The server ignored the Range (200) or rejects it (416): start again from the first byte.
        await writer.restart();
        loaded = 0;
        if (res.status !== 200) {
          await res.body?.cancel();
          delete headers.Range;
          res = await this.fetchFn(meta.url, { headers });
        }
      }
      if (!res.ok || !res.body) throw new ModelFileError(where, `HTTP ${res.status} downloading it`);
      const report = (force: boolean) => {
        if (force || loaded - reported >= PROGRESS_STEP) {
          reported = loaded;
          this.opts.onProgress?.({ file, loadedBytes: loaded, totalBytes: meta.size });
        }
      };
      let reported = loaded;
      report(true);
      const reader = res.body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new ModelFileError(where, `the download broke off after ${loaded} of ${meta.size} bytes (${describeFetchError(e)}); loading again resumes it`);
        }
        if (chunk.done) break;
        if (loaded + chunk.value.byteLength > meta.size) {
          await reader.cancel();
          await writer.restart();
          throw new ModelFileError(where, `the server sent more than the ${meta.size} bytes announced`);
        }
        await writer.write(chunk.value);
        loaded += chunk.value.byteLength;
        report(false);
      }
      if (loaded !== meta.size) throw new ModelFileError(where, `the download ended after ${loaded} of ${meta.size} bytes; loading again resumes it`);
      const stored = await writer.commit();
      report(true);
      return stored;
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  private offlineMiss(file: string, why = 'it is not in the cache'): ModelFileError {
    const where = this.cache ? ` (${this.cache.name})` : '';
    return new ModelFileError(`${this.repo}/${file}`, `offline mode (HF_HUB_OFFLINE or the offline option) and ${why}${where}; load once online to download it`);
  }
}

/** `W/"abc"` -> `abc`, as huggingface_hub's _normalize_etag. */
function normalizeEtag(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '') || null;
}

function describeFetchError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}
