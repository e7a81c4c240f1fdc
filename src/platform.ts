/**
 * The ports through which the isomorphic core reaches its platform. The core (`src/`) uses Web-standard APIs and
 * WebGPU types only; `bindings/node` and `bindings/browser` implement these interfaces.
 */

import type { CpuWorkerHost } from './cpu/cpu-threads.js';

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
  /**
   * The folder's files, relative, subfolders included (`Q4_K_M/x-Q4_K_M.gguf`); absent where a source cannot list
   * (a URL prefix). Used to find GGUF files by quant type.
   */
  list?(): Promise<string[]>;
}

/** Progress of one model file; `loadedBytes === totalBytes` once it is complete. */
export interface DownloadProgress {
  /** 'download' (network to cache) or 'upload' (weights to the GPU); absent means download. */
  phase?: 'download' | 'upload';
  /** The file within the model, e.g. `model.safetensors`. */
  file: string;
  loadedBytes: number;
  totalBytes: number;
}

/**
 * How to find a model named by a Hugging Face repo id (`Qwen/Qwen2.5-0.5B-Instruct`). Every field is optional;
 * in Node, unset fields fall back to the Hugging Face environment variables (HF_ENDPOINT, HF_TOKEN, HF_HOME,
 * HF_HUB_CACHE, HF_HUB_OFFLINE), as Python's huggingface_hub reads them.
 */
export interface OpenModelOptions {
  /** Branch, tag or commit hash of a hub repo. Default 'main'. */
  revision?: string;
  /** The hub's base URL. Default HF_ENDPOINT (Node), else https://huggingface.co. */
  hfEndpoint?: string;
  /** Access token for gated or private repos, sent as `Authorization: Bearer`. Default HF_TOKEN (Node). */
  hfToken?: string;
  /** Node: the hub cache folder (default HF_HUB_CACHE, else $HF_HOME/hub). The browser caches with the Cache API. */
  downloadDir?: string;
  /** Load from the cache only and make no request. Default HF_HUB_OFFLINE (Node), else false. */
  offline?: boolean;
  /** Called as model files download and as weights upload to the GPU (`phase`). */
  onProgress?: (progress: DownloadProgress) => void;
}

/** What a binding provides to the core. */
export interface Platform {
  /**
   * Workers for the CPU backend's threads (src/cpu/cpu-threads.ts): Node's worker_threads; absent where the runtime
   * has none the backend can block on (a page's main thread), which then runs single-threaded.
   */
  cpuWorkers?: CpuWorkerHost;
  /** The WebGPU entry point (`navigator.gpu` in a browser, Dawn's `create()` result in Node). */
  gpu(): Promise<GPU>;
  /**
   * Opens a model given by the user (path, URL or repo id); `undefined` means the embedded default model.
   * `opts` (revision, hub endpoint, token, cache, progress) matter for repo ids.
   */
  openModel(model: string | undefined, opts?: OpenModelOptions): Promise<ModelSource>;
}
