/**
 * ModelSource / ByteSource over a local directory, for Node. Reads go through FileHandle at explicit offsets, so a
 * multi-GB safetensors file is never mapped or read whole.
 */
import { constants } from 'node:fs';
import { access, open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ModelFileError } from '../../src/errors.js';
import type { ByteSource, ModelSource } from '../../src/platform.js';

/** Node's limit on one read() (2 GiB - 1): larger requests are split. */
const MAX_READ = 1 << 30;

/** Random-access reads of one local file. Close it when done. */
export class FsByteSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private handle: FileHandle | null,
  ) {}

  /** Opens `path`; a missing or unreadable file is a ModelFileError naming it. */
  static async open(path: string): Promise<FsByteSource> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      throw new ModelFileError(path, describe(e, 'cannot be opened'));
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new ModelFileError(path, 'is not a regular file');
      return new FsByteSource(path, st.size, handle);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /**
   * Reads `length` bytes at `offset` into a fresh buffer (byteOffset 0, so typed-array views of it work); fewer
   * only where the file ends.
   */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!this.handle) throw new ModelFileError(this.name, 'read after close');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`${this.name}: bad read range offset=${offset} length=${length}`);
    }
    const n = Math.max(0, Math.min(length, this.size - offset));
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(out, done, Math.min(n - done, MAX_READ), offset + done));
      } catch (e) {
        throw new ModelFileError(this.name, describe(e, `read failed at offset ${offset + done}`));
      }
      if (bytesRead === 0) return out.subarray(0, done); // the file shrank under us
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.close();
  }
}

/** A model folder on the local disk. File names are relative to it and may not escape it. */
export class FsModelSource implements ModelSource {
  private constructor(readonly name: string) {}

  /**
   * Opens a model directory; a missing path or a file in its place is a ModelFileError.
   *
   * @example
   *   const model = await FsModelSource.open('/models/Llama-3.2-1B');
   *   const cfg = parseModelConfig(await model.readText('config.json'));
   */
  static async open(dir: string): Promise<FsModelSource> {
    const path = resolve(dir);
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (e) {
      throw new ModelFileError(path, describe(e, 'model folder cannot be read'));
    }
    if (!isDir) throw new ModelFileError(path, 'is not a directory (expected a model folder)');
    return new FsModelSource(path);
  }

  async exists(file: string): Promise<boolean> {
    try {
      await access(this.path(file), constants.R_OK);
      return true;
    } catch {
      return false;
    }
  }

  /** Files of the folder and of its subfolders two levels down (a GGUF repo's `Q4_K_M/` folders), at most 10,000. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string, depth: number): Promise<void> => {
      const entries = await readdir(join(this.name, rel), { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (out.length >= 10_000) return;
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (e.isFile() || (e.isSymbolicLink() && (await stat(join(this.name, name)).catch(() => null))?.isFile())) out.push(name);
        else if (e.isDirectory() && depth < 2 && !e.name.startsWith('.')) await walk(name, depth + 1);
      }
    };
    await walk('', 0);
    return out;
  }

  async readText(file: string): Promise<string> {
    const path = this.path(file);
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      throw new ModelFileError(path, describe(e, 'cannot be read'));
    }
  }

  async open(file: string): Promise<ByteSource> {
    return FsByteSource.open(this.path(file));
  }

  /** Resolves a relative file name inside the folder; names reaching outside it (`../x`, `/etc/x`) are rejected. */
  private path(file: string): string {
    const full = resolve(this.name, file);
    const rel = relative(this.name, full);
    if (isAbsolute(file) || rel === '' || rel.startsWith(`..${sep}`) || rel === '..') {
      throw new ModelFileError(join(this.name, file), 'is outside the model folder');
    }
    return full;
  }
}

function describe(e: unknown, what: string): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return `${what}: permission denied`;
  if (code === 'EISDIR') return 'is a directory, not a file';
  return `${what}: ${(e as Error)?.message ?? String(e)}`;
}
