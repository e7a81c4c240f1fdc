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
import type { ModelSource, Platform } from '../../src/platform.js';
import { FsModelSource } from './fs-source.js';
import { nodeGpu } from './webgpu.js';

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
  async openModel(model: string | undefined): Promise<ModelSource> {
    return FsModelSource.open(model === undefined ? DEFAULT_MODEL_DIR() : resolve(model));
  },
};

setDefaultPlatform(nodePlatform);

export * from '../../src/index.js';
export { nodeGpu };
