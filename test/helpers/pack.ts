import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './paths.js';

const run = promisify(execFile);

/** `npm pack`s the repository (as built: dist/ must exist) into `dir`; returns the tarball's path. */
export async function packTarball(dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: REPO, maxBuffer: 64 << 20 });
  return join(dir, JSON.parse(stdout)[0].filename as string);
}

/**
 * An environment with no Vulkan driver: the loader reads only an absent file, so Dawn finds no adapter (and no
 * lavapipe of ours is added: webgpu.ts leaves a user's VK_ICD_FILENAMES alone).
 */
export function noAdapterEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, VK_ICD_FILENAMES: join(REPO, '.no-vulkan-driver.json'), VK_DRIVER_FILES: '', VK_ADD_DRIVER_FILES: '', WEBGPU_LLM_VULKAN_ICD: '', ...extra };
}
