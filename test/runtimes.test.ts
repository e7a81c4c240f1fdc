/**
 * The runtime matrix (issue 18): the built package (dist/) with its embedded default model gives Node's greedy token
 * ids everywhere. Node without an adapter (Vulkan driver hidden) through device 'auto' -> the CPU backend; Deno and
 * Bun (npm packages `deno`, `bun`) running test/runtimes/generate.mjs. A runtime whose binary is not installed is
 * skipped with one line saying so.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { DEFAULT_MODEL, REPO } from './helpers/paths.js';

const run = promisify(execFile);
const RUN = JSON.parse(readFileSync(join(REPO, 'test/runtimes/prompts.json'), 'utf8')) as { prompts: string[]; maxTokens: number };
const SCRIPT = join(REPO, 'test/runtimes/generate.mjs');
const BIN = join(REPO, 'node_modules/.bin');
/** No Vulkan driver: the loader reads only this (absent) file, so Dawn finds no adapter. */
export const NO_ADAPTER_ENV = { ...process.env, VK_ICD_FILENAMES: join(REPO, '.no-vulkan-driver.json'), VK_DRIVER_FILES: '', VK_ADD_DRIVER_FILES: '', WEBGPU_LLM_VULKAN_ICD: '' };
const built = existsSync(join(REPO, 'dist/index.js'));

interface Result {
  ids: number[][];
  text: string;
  logs: string[];
}

/** Node's greedy ids for the run's prompts, in this process on the CPU backend. */
let nodeIds: number[][];
beforeAll(async () => {
  const llm = await LLM.create({ model: DEFAULT_MODEL, device: 'cpu' });
  const outs = await llm.generate(RUN.prompts, new SamplingParams({ temperature: 0, maxTokens: RUN.maxTokens }));
  nodeIds = outs.map((o) => o.outputs[0].tokenIds);
  await llm.dispose();
});

const RUNTIMES: { name: string; bin: string; args: string[] }[] = [
  { name: 'Node without an adapter', bin: process.execPath, args: [SCRIPT] },
  // --node-modules-dir=manual: resolve bare imports through node_modules as Node does (Deno's own cache otherwise).
  { name: 'Deno', bin: join(BIN, 'deno'), args: ['run', '--allow-all', '--node-modules-dir=manual', SCRIPT] },
  { name: 'Bun', bin: join(BIN, 'bun'), args: [SCRIPT] },
];

describe.skipIf(!built)('the built package in other runtimes, embedded model, no adapter', () => {
  it.each(RUNTIMES)('$name: device auto picks the CPU and gives Node\'s greedy ids', async ({ name, bin, args }) => {
    if (!existsSync(bin)) {
      console.warn(`skipped: ${name}: ${bin} is not installed (npm install)`);
      return;
    }
    const { stdout } = await run(bin, args, { cwd: REPO, env: NO_ADAPTER_ENV, maxBuffer: 16 << 20 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Result;
    expect(out.logs).toEqual(["webgpu-llm: device 'auto': the CPU backend (WebAssembly), no WebGPU adapter"]);
    expect(out.ids).toEqual(nodeIds);
    expect(out.ids.every((ids) => ids.length === RUN.maxTokens)).toBe(true);
    expect(out.text).toMatch(/^, a little girl named Lily/);
  });
});
