/**
 * webgpu-llm in the browser (and workers): WebGPU from `navigator.gpu`, models from URLs and the Hugging Face hub.
 *
 * @example
 * import { LLM, SamplingParams } from 'webgpu-llm/browser';
 * const llm = await LLM.create({ model: 'HuggingFaceTB/SmolLM2-135M-Instruct', onProgress: (p) => console.log(p) });
 * const llm2 = await LLM.create({ model: 'https://example.com/models/tinystories-656K/' });
 * const llm3 = await WorkerLLM.create({ model: 'org/name' }); // the same API, with the engine in a Web Worker
 */
import { setDefaultPlatform } from '../../src/llm.js';
import type { OpenModelOptions, Platform } from '../../src/platform.js';
import { DEFAULT_HUB_ENDPOINT, HubModelSource, isRepoId } from '../../src/sources/hub-source.js';
import { UrlModelSource } from '../../src/sources/url-source.js';
import { CacheStorageHubCache } from './cache-storage.js';

/** The embedded default model, served beside the package's dist/ folder. */
const DEFAULT_MODEL_URL = new URL('../models/tinystories-656K/', import.meta.url);

export const browserPlatform: Platform = {
  async gpu(): Promise<GPU> {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new Error('WebGPU is not available in this browser (navigator.gpu is undefined)');
    return gpu;
  },
  /**
   * `model` is omitted (the embedded model), a repo id `org/name` (downloaded into Cache Storage; `hfEndpoint`
   * and `hfToken` are options here), or a URL prefix, absolute or relative to the page (write `./org/name` for a
   * relative folder that looks like a repo id).
   */
  async openModel(model: string | undefined, opts: OpenModelOptions = {}) {
    if (model === undefined) return new UrlModelSource(DEFAULT_MODEL_URL);
    if (isRepoId(model)) {
      const endpoint = opts.hfEndpoint ?? DEFAULT_HUB_ENDPOINT;
      return new HubModelSource(model, {
        revision: opts.revision,
        endpoint,
        token: opts.hfToken,
        offline: opts.offline,
        cache: await CacheStorageHubCache.open(endpoint),
        onProgress: opts.onProgress,
      });
    }
    return new UrlModelSource(new URL(model, globalThis.location?.href));
  },
};

setDefaultPlatform(browserPlatform);

export * from '../../src/index.js';
export { CacheStorageHubCache, HubModelSource, UrlModelSource };
export { WorkerLLM, WorkerEngine, type WorkerLLMCreateOptions } from './worker-llm.js';
export { serveLLMWorker } from './worker.js';
