/**
 * The ports through which the isomorphic core reaches its platform. The core (`src/`) uses Web-standard APIs and
 * WebGPU types only; `bindings/node` and `bindings/browser` implement these interfaces.
 */

/** Random-access bytes: a local file (Node), an HTTP resource with Range requests (browser), or memory. */
export interface ByteSource {
  /** Display name used in error messages (a path or URL). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Reads `length` bytes at `offset`; resolves to fewer bytes only at the end of the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** A model folder: a local directory, a URL prefix, or a hub repository. File names are relative ("config.json"). */
export interface ModelSource {
  /** Display name used in error messages (the folder path or URL prefix). */
  readonly name: string;
  exists(file: string): Promise<boolean>;
  readText(file: string): Promise<string>;
  open(file: string): Promise<ByteSource>;
}

/** What a binding provides to the core. */
export interface Platform {
  /** The WebGPU entry point (`navigator.gpu` in a browser, Dawn's `create()` result in Node). */
  gpu(): Promise<GPU>;
  /** Opens a model given by the user (path, URL or repo id); `undefined` means the embedded default model. */
  openModel(model: string | undefined): Promise<ModelSource>;
}
