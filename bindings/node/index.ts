/**
 * webgpu-llm for Node: the isomorphic core with Dawn's WebGPU and local model folders.
 *
 * @example
 * import { LLM, SamplingParams } from 'webgpu-llm';
 * const llm = await LLM.create();                       // the embedded default model
 * const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 32 }));
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setDefaultPlatform } from '../../src/llm.js';
import type { ModelSource, OpenModelOptions, Platform } from '../../src/platform.js';
import { HubModelSource, isRepoId } from '../../src/sources/hub-source.js';
import { UrlModelSource } from '../../src/sources/url-source.js';
import { FsModelSource } from './fs-source.js';
import { HfCache, hubCacheDir, hubOffline, hubToken } from './hf-cache.js';
import { nodeGpu } from './webgpu.js';
import { nodeCpuWorkers } from './cpu-workers.js';
import { loadXGrammarNode } from './xgrammar.js';
import { setXGrammarLoader } from '../../src/sampling/structured/xgrammar.js';

/** The folder holding webgpu-llm's package.json (walks up from this module: it runs from src or dist). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'webgpu-llm') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('webgpu-llm: cannot find the package root');
    dir = up;
  }
}

/** The embedded default model (tinystories-656K, bf16), shipped in the package. */
export const DEFAULT_MODEL_DIR = (): string => join(packageRoot(), 'models/tinystories-656K');

export const nodePlatform: Platform = {
  gpu: nodeGpu,
  cpuWorkers: nodeCpuWorkers,
  /**
   * `model` is, in this order: omitted (the embedded model), an http(s) URL prefix, an existing local folder, or a
   * Hugging Face repo id `org/name` (downloaded into the Hugging Face cache, see hf-cache.ts).
   */
  async openModel(model: string | undefined, opts: OpenModelOptions = {}): Promise<ModelSource> {
    if (model === undefined) return FsModelSource.open(DEFAULT_MODEL_DIR());
    if (/^https?:\/\//i.test(model)) return new UrlModelSource(model);
    if (!isRepoId(model) || existsSync(model)) return FsModelSource.open(resolve(model));
    return new HubModelSource(model, {
      revision: opts.revision,
      endpoint: opts.hfEndpoint ?? process.env.HF_ENDPOINT,
      token: opts.hfToken ?? (await hubToken()),
      offline: opts.offline ?? hubOffline(),
      cache: new HfCache(opts.downloadDir ?? hubCacheDir()),
      onProgress: opts.onProgress,
    });
  },
};

setDefaultPlatform(nodePlatform);
setXGrammarLoader(loadXGrammarNode);

export * from '../../src/index.js';
// Reads template files from disk (the core version needs a reader for paths).
export { loadChatTemplate } from './chat-template.js';
export { nodeGpu };
