/**
 * A model folder held in memory: file name -> bytes (or text). For runtimes without a filesystem whose assets arrive
 * as bytes: a Cloudflare worker's Data modules, a Vercel edge function's fetched assets, a test.
 *
 * @example
 *   const source = new MemoryModelSource('tinystories', { 'config.json': configText, 'model.safetensors': weights });
 */
import { ModelFileError } from '../errors.js';
import type { ByteSource, ModelSource } from '../platform.js';

/**
 * A file's contents: bytes, text, or a JSON file already parsed (a bundler's JSON import: wrangler's and esbuild's
 * default), written back with JSON.stringify.
 */
export type MemoryFile = ArrayBuffer | ArrayBufferView | string | Record<string, unknown>;

export class MemoryModelSource implements ModelSource {
  private readonly files = new Map<string, Uint8Array>();

  constructor(
    readonly name: string,
    files: Record<string, MemoryFile>,
  ) {
    for (const [file, data] of Object.entries(files)) {
      if (typeof data === 'string') this.files.set(file, new TextEncoder().encode(data));
      else if (ArrayBuffer.isView(data)) this.files.set(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else if (isArrayBuffer(data)) this.files.set(file, new Uint8Array(data));
      else if (isPlainObject(data) && file.endsWith('.json')) this.files.set(file, new TextEncoder().encode(JSON.stringify(data)));
      else throw new ModelFileError(`${name}/${file}`, `a model file must be an ArrayBuffer, a typed array, text or (a .json file) a parsed object, got ${Object.prototype.toString.call(data)}`);
    }
  }

  async exists(file: string): Promise<boolean> {
    return this.files.has(file);
  }

  private get(file: string): Uint8Array {
    const bytes = this.files.get(file);
    if (!bytes) throw new ModelFileError(`${this.name}/${file}`, `not found (the files given are: ${[...this.files.keys()].join(', ')})`);
    return bytes;
  }

  async readText(file: string): Promise<string> {
    return new TextDecoder().decode(this.get(file));
  }

  async open(file: string): Promise<ByteSource> {
    const bytes = this.get(file);
    return {
      name: `${this.name}/${file}`,
      size: bytes.byteLength,
      // A copy, as a file read gives: the loader may convert what it reads in place, and the files are reused.
      read: async (offset, length) => bytes.slice(offset, Math.min(bytes.byteLength, offset + length)),
    };
  }

  async list(): Promise<string[]> {
    return [...this.files.keys()];
  }
}

/** instanceof fails for an ArrayBuffer from another realm (a vm context, a worker's structured clone). */
function isArrayBuffer(x: unknown): x is ArrayBuffer {
  return Object.prototype.toString.call(x) === '[object ArrayBuffer]';
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return Object.prototype.toString.call(x) === '[object Object]';
}
