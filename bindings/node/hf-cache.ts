/**
 * The Hugging Face cache folder as a HubCache, laid out exactly as Python's huggingface_hub lays it out, so that
 * files it downloaded are reused here and ours by it:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
 *   └── models--{org}--{name}/
 *       ├── blobs/{etag}                      file contents, named by hash (sha256 for LFS files, git sha1 else)
 *       ├── blobs/{etag}.incomplete           a download in progress or interrupted; resumed by the next one
 *       ├── refs/{revision}                   the commit hash the revision last resolved to
 *       ├── snapshots/{commit}/{file}         relative symlink to ../../blobs/{etag} (a copy where links fail)
 *       └── .no_exist/{commit}/{file}         empty: the file does not exist at that commit
 *
 * A blob appears under its final name only after its size (and sha256, for LFS files) is checked, by rename, so an
 * interrupted download never leaves a corrupt file in the cache. Two processes downloading the same blob at once
 * are not locked out of each other (huggingface_hub uses a file lock); the size and hash checks catch a mix-up.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { ModelFileError } from '../../src/errors.js';
import type { BlobWriter, CachedFile, HubCache } from '../../src/sources/hub-source.js';
import { FsByteSource } from './fs-source.js';

type Env = Record<string, string | undefined>;

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: Env = process.env): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
}

/** The hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub. */
export function hubCacheDir(env: Env = process.env): string {
  return env.HF_HUB_CACHE ?? join(hfHome(env), 'hub');
}

/** The access token: $HF_TOKEN, else the one `hf auth login` saved ($HF_TOKEN_PATH, default $HF_HOME/token). */
export async function hubToken(env: Env = process.env): Promise<string | undefined> {
  if (env.HF_TOKEN) return env.HF_TOKEN;
  try {
    return (await readFile(env.HF_TOKEN_PATH ?? join(hfHome(env), 'token'), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** HF_HUB_OFFLINE as huggingface_hub reads it: 1, ON, YES or TRUE (any case). */
export function hubOffline(env: Env = process.env): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE ?? '').toUpperCase());
}

/**
 * A HubCache over a Hugging Face cache folder.
 *
 * @example
 *   const cache = new HfCache(hubCacheDir());
 *   const model = new HubModelSource('Qwen/Qwen2.5-0.5B-Instruct', { cache });
 */
export class HfCache implements HubCache {
  constructor(readonly name: string) {}

  /** `models--{org}--{name}` under the cache folder. */
  repoDir(repo: string): string {
    return join(this.name, `models--${repo.split('/').join('--')}`);
  }

  async getRef(repo: string, revision: string): Promise<string | null> {
    try {
      return (await readFile(this.inside(repo, 'refs', revision), 'utf8')).trim() || null;
    } catch {
      return null;
    }
  }

  async setRef(repo: string, revision: string, commit: string): Promise<void> {
    const path = this.inside(repo, 'refs', revision);
    if ((await this.getRef(repo, revision)) === commit) return;
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, commit);
    await rename(tmp, path);
  }

  async lookup(repo: string, commit: string, file: string): Promise<CachedFile | 'absent' | null> {
    const path = this.inside(repo, 'snapshots', commit, file);
    if (await isFile(path)) return cachedFile(path);
    if (await isFile(this.inside(repo, '.no_exist', commit, file))) return 'absent';
    return null;
  }

  async markAbsent(repo: string, commit: string, file: string): Promise<void> {
    const path = this.inside(repo, '.no_exist', commit, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '');
  }

  async linkBlob(repo: string, commit: string, file: string, etag: string): Promise<CachedFile | null> {
    const blob = this.inside(repo, 'blobs', etag);
    if (!(await isFile(blob))) return null;
    return this.link(repo, commit, file, blob);
  }

  async beginDownload(repo: string, commit: string, file: string, etag: string, size: number): Promise<BlobWriter> {
    const blob = this.inside(repo, 'blobs', etag);
    this.inside(repo, 'snapshots', commit, file); // checks the names before any byte is written
    await mkdir(dirname(blob), { recursive: true });
    return FileBlobWriter.open(blob, etag, size, () => this.link(repo, commit, file, blob));
  }

  /** Points snapshots/{commit}/{file} at the blob (relative symlink; a copy where symlinks are not allowed). */
  private async link(repo: string, commit: string, file: string, blob: string): Promise<CachedFile> {
    const path = this.inside(repo, 'snapshots', commit, file);
    await mkdir(dirname(path), { recursive: true });
    await rm(path, { force: true });
    try {
      await symlink(relative(dirname(path), blob), path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return cachedFile(path); // another process linked it
      await copyFile(blob, path);
    }
    return cachedFile(path);
  }

  /** A path inside the repo's folder; names that would reach outside it (`..`, absolute) are rejected. */
  private inside(repo: string, ...parts: string[]): string {
    for (const p of parts) {
      if (p === '' || p.startsWith('/') || p.includes('\\') || p.split('/').some((s) => s === '..' || s === '.' || s === '')) {
        throw new ModelFileError(`${repo}/${p}`, 'is not a plain relative name inside the repository');
      }
    }
    return join(this.repoDir(repo), ...parts);
  }
}

/**
 * Writes a blob to `{blob}.incomplete`, appending to what an interrupted download left there; commit() checks the
 * size and, for a sha256 etag, the hash of the whole file, then renames it to `{blob}`.
 */
class FileBlobWriter implements BlobWriter {
  private constructor(
    private readonly blob: string,
    private readonly size: number,
    private handle: FileHandle | null,
    private hash: Hash | null,
    readonly resumeFrom: number,
    private written: number,
    /** Puts the finished blob into its snapshot. */
    private readonly linkTo: () => Promise<CachedFile>,
    private readonly etag: string,
  ) {}

  static async open(blob: string, etag: string, size: number, linkTo: () => Promise<CachedFile>): Promise<FileBlobWriter> {
    const partial = `${blob}.incomplete`;
    let have = 0;
    try {
      have = (await stat(partial)).size;
    } catch {
      // no earlier attempt
    }
    if (have > size) have = 0; // not a prefix of this blob: start again
    const sha256 = /^[0-9a-f]{64}$/.test(etag);
    const hash = sha256 ? createHash('sha256') : null;
    if (hash && have > 0) {
      for await (const chunk of createReadStream(partial, { end: have - 1 })) hash.update(chunk as Buffer);
    }
    const handle = await open(partial, have > 0 ? 'r+' : 'w');
    if (have > 0) await handle.truncate(have);
    return new FileBlobWriter(blob, size, handle, hash, have, have, linkTo, etag);
  }

  async restart(): Promise<void> {
    await this.handle!.truncate(0);
    this.written = 0;
    if (this.hash) this.hash = createHash('sha256');
  }

  async write(chunk: Uint8Array): Promise<void> {
    let done = 0;
    while (done < chunk.byteLength) {
      const { bytesWritten } = await this.handle!.write(chunk, done, chunk.byteLength - done, this.written);
      done += bytesWritten;
      this.written += bytesWritten;
    }
    this.hash?.update(chunk);
  }

  async commit(): Promise<CachedFile> {
    const partial = `${this.blob}.incomplete`;
    await this.close();
    const size = (await stat(partial)).size;
    if (size !== this.size) throw new ModelFileError(partial, `holds ${size} bytes, expected ${this.size}; loading again resumes the download`);
    if (this.hash) {
      const got = this.hash.digest('hex');
      if (got !== this.etag) {
        await rm(partial, { force: true });
        throw new ModelFileError(partial, `the downloaded bytes have sha256 ${got}, expected ${this.etag}; deleted, load again to retry`);
      }
    }
    await rename(partial, this.blob);
    return this.linkTo();
  }

  async abort(): Promise<void> {
    await this.close(); // the .incomplete file stays, for the next attempt to resume
  }

  private async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.close();
  }
}

function cachedFile(path: string): CachedFile {
  return { name: path, open: () => FsByteSource.open(path) };
}

/** A regular file (following symlinks: a dangling snapshot link is no file). */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
