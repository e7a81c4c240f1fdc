/**
 * webgpu-llm in edge isolates (Cloudflare Workers / workerd, Vercel Edge Functions / edge-runtime) and any runtime
 * without a filesystem: no `node:` imports; the model's files come as bytes or a URL prefix, and the wasm modules
 * precompiled (these runtimes forbid compiling wasm from bytes at run time). The CPU backend runs single-threaded;
 * WebGPU is used where the isolate has `navigator.gpu`.
 *
 * @example
 * // A Cloudflare worker (wrangler bundles .wasm imports as WebAssembly.Module and .bin/.json as Data/Text).
 * import { LLM, createApp, edgePlatform } from 'webgpu-llm/edge';
 * import core from 'webgpu-llm/wasm/core.wasm';
 * import cpu from 'webgpu-llm/wasm/cpu.wasm';
 * import weights from 'webgpu-llm/models/tinystories-656K/model.safetensors';
 * import config from 'webgpu-llm/models/tinystories-656K/config.json';
 * // ... tokenizer.json, tokenizer_config.json, generation_config.json alike
 * const platform = edgePlatform({ wasm: { core, cpu }, model: { 'config.json': JSON.stringify(config), 'model.safetensors': weights, ... } });
 * const app = createApp({ llm: await LLM.create({ platform, device: 'cpu' }) });
 * export default { fetch: (request) => app.fetch(request) };
 */
import { setDefaultPlatform } from '../../src/llm.js';
import type { OpenModelOptions, Platform } from '../../src/platform.js';
import { isRepoId } from '../../src/sources/hub-source.js';
import { MemoryModelSource, type MemoryFile } from '../../src/sources/memory-source.js';
import { UrlModelSource } from '../../src/sources/url-source.js';
import { setWasmModules, type WasmModules } from '../../src/wasm/modules.js';

export interface EdgeAssets {
  /** Precompiled core.wasm and cpu.wasm (dist/wasm/ in the package), required where wasm cannot compile from bytes. */
  wasm?: WasmModules;
  /**
   * The default model (used when LLM.create gets no `model`): its files by name (bytes, or text for JSON files), or a
   * URL prefix the isolate can fetch (`https://example.com/models/tinystories-656K/`).
   */
  model?: Record<string, MemoryFile> | string | URL;
  /** fetch for URL models (default the global). */
  fetch?: typeof fetch;
}

/**
 * The platform port for an edge isolate: pass it as `LLM.create({ platform })`. Sets the precompiled wasm modules
 * for the whole isolate.
 */
export function edgePlatform(assets: EdgeAssets = {}): Platform {
  if (assets.wasm) setWasmModules(assets.wasm);
  const url = (m: string | URL) => new UrlModelSource(m, assets.fetch ? { fetch: assets.fetch } : {});
  return {
    async gpu(): Promise<GPU> {
      const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
      if (!gpu) throw new Error('WebGPU is not available in this runtime (navigator.gpu is undefined): use device \'cpu\'');
      return gpu;
    },
    async openModel(model: string | undefined, _opts?: OpenModelOptions) {
      if (model === undefined) {
        const m = assets.model;
        if (m === undefined) throw new Error("edgePlatform: no model given: pass edgePlatform({ model: { 'config.json': ..., 'model.safetensors': ... } }) or a URL prefix");
        return typeof m === 'string' || m instanceof URL ? url(m) : new MemoryModelSource('model', m);
      }
      if (/^https?:\/\//i.test(model)) return url(model);
      if (isRepoId(model)) throw new Error(`edgePlatform: '${model}' looks like a Hugging Face repo id; an isolate has no cache for downloads: pass the files or a URL prefix`);
      throw new Error(`edgePlatform: model '${model}' must be an http(s) URL prefix (an isolate has no filesystem)`);
    },
  };
}

export * from '../../src/index.js';
export { createApp, type ServerOptions } from '../../src/server/index.js';
export { MemoryModelSource, UrlModelSource, setWasmModules, type MemoryFile, type WasmModules };

// `LLM.create()` without a platform in an isolate: this one, whose missing model says what to pass.
setDefaultPlatform(edgePlatform());
