/**
 * webgpu-llm in the browser (and workers): WebGPU from `navigator.gpu`, models from URLs.
 *
 * @example
 * import { LLM, SamplingParams } from 'webgpu-llm/browser';
 * const llm = await LLM.create({ model: 'https://example.com/models/tinystories-656K/' });
 */
import { setDefaultPlatform } from '../../src/llm.js';
import type { Platform } from '../../src/platform.js';
import { UrlModelSource } from '../../src/sources/url-source.js';

/** The embedded default model, served beside the package's dist/ folder. */
const DEFAULT_MODEL_URL = new URL('../models/tinystories-656K/', import.meta.url);

export const browserPlatform: Platform = {
  async gpu(): Promise<GPU> {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new Error('WebGPU is not available in this browser (navigator.gpu is undefined)');
    return gpu;
  },
  async openModel(model: string | undefined) {
    return new UrlModelSource(model === undefined ? DEFAULT_MODEL_URL : new URL(model, globalThis.location?.href));
  },
};

setDefaultPlatform(browserPlatform);

export * from '../../src/index.js';
export { UrlModelSource };
