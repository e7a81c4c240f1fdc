/**
 * `npm install` of the packed tarball in an empty folder, as a new user on a machine without a GPU or Vulkan driver
 * (the driver hidden, a fresh HOME so that no fetched lavapipe is found): `npx webgpu-llm generate` and the README's
 * first example run on the CPU backend and give what this checkout gives; `npx webgpu-llm doctor --json` says
 * so, and `--device webgpu` fails saying what to do next. The install reaches the npm registry for the
 * dependencies (npm's cache makes reruns quick).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { noAdapterEnv, packTarball } from './helpers/pack.js';
import { REPO } from './helpers/paths.js';

const run = promisify(execFile);
const PROMPT = 'Once upon a time';

/** The README's first code example (under "## Use"), as written. */
function readmeFirstExample(): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const use = readme.slice(readme.indexOf('\n## Use\n'));
  const m = /```ts\n([\s\S]*?)```/.exec(use);
  if (!m) throw new Error('README.md: no ```ts block under "## Use"');
  return m[1];
}

describe.skipIf(!existsSync(join(REPO, 'dist/cli.js')))('npm install of the tarball on a machine without an adapter', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'webgpu-llm-install-'));
    const tarball = await packTarball(dir);
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app, maxBuffer: 64 << 20 });
    dir = app;
    const home = join(dir, 'home');
    mkdirSync(home);
    // npm's cache stays where it was (set before HOME moves), so npx finds the installed bin offline.
    const cache = (await run('npm', ['config', 'get', 'cache'])).stdout.trim();
    env = noAdapterEnv({ HOME: home, XDG_CACHE_HOME: join(home, '.cache'), npm_config_cache: cache });
  }, 600_000);

  /** This checkout's greedy completions of `prompts` on the CPU backend. */
  async function expected(prompts: string[], maxTokens: number) {
    const llm = await LLM.create({ device: 'cpu' });
    const outs = await llm.generate(prompts, new SamplingParams({ temperature: 0, maxTokens }));
    await llm.dispose();
    return outs.map((o) => o.outputs[0]);
  }

  it('npx webgpu-llm generate runs on the CPU backend, with this checkout\'s greedy text', async () => {
    const { stdout, stderr } = await run('npx', ['webgpu-llm', 'generate', PROMPT, '--max-tokens', '24', '--temperature', '0'], { cwd: dir, env });
    const [out] = await expected([PROMPT], 24);
    expect(stdout).toBe(`${PROMPT}${out.text}\n`);
    expect(stderr).toContain("webgpu-llm: device 'auto': the CPU backend (WebAssembly), no WebGPU adapter");
    expect(stderr).toMatch(/\[24 tokens in [\d.]+ s, [\d.]+ tokens\/s\]/);
  });

  it("the README's first example runs as written", async () => {
    writeFileSync(join(dir, 'example.mjs'), readmeFirstExample());
    const { stdout } = await run('node', ['example.mjs'], { cwd: dir, env });
    const prompts = ['Once upon a time', 'Hello, my name is'];
    const outs = await expected(prompts, 32);
    // console.log(o.prompt, text, finishReason) for each output.
    expect(stdout).toBe(prompts.map((p, i) => `${p} ${outs[i].text} ${outs[i].finishReason}\n`).join(''));
  });

  it('npx webgpu-llm doctor --json: no adapter, the CPU backend, and what to do', async () => {
    const { stdout } = await run('npx', ['webgpu-llm', 'doctor', '--json'], { cwd: dir, env });
    const r = JSON.parse(stdout);
    expect(r.version).toBe(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version);
    expect(r.cpu).toMatchObject({ available: true, threads: expect.any(Number) });
    expect(r.webgpu).toMatchObject({ available: false, error: 'no WebGPU adapter', adapters: [] });
    expect(r.webgpu.lavapipe).toBeUndefined();
    expect(r.auto).toEqual({ device: 'cpu', reason: 'no WebGPU adapter' });
    expect(r.hints).toEqual(['for WebGPU without a GPU: npx webgpu-llm setup (fetches Mesa lavapipe, a CPU Vulkan driver)', "the CPU backend needs nothing: --device cpu (device 'auto' picks it already)"]);
  });

  it('--device webgpu without an adapter fails saying what to do next', async () => {
    const err = await run('npx', ['webgpu-llm', 'generate', PROMPT, '--device', 'webgpu'], { cwd: dir, env }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain("run 'npx webgpu-llm setup' (a CPU Vulkan driver, Linux x86-64) or use --device cpu");
  });

  it.skipIf(process.platform !== 'linux' || process.arch !== 'x64' || !existsSync('/usr/bin/apt-get'))(
    'npx webgpu-llm setup fetches lavapipe into the user cache; doctor then finds it, and device auto picks WebGPU',
    async () => {
      // The user's machine without our hidden driver: only the fresh HOME (no lavapipe of ours yet).
      const withDriver = { ...env, VK_ICD_FILENAMES: undefined, VK_DRIVER_FILES: undefined, VK_ADD_DRIVER_FILES: undefined, WEBGPU_LLM_VULKAN_ICD: undefined };
      const { stdout: icd, stderr } = await run('npx', ['webgpu-llm', 'setup'], { cwd: dir, env: withDriver });
      expect(icd.trim()).toBe(join(env.HOME!, '.cache/webgpu-llm/lavapipe/lvp_icd.json'));
      expect(stderr).toContain('[setup] lavapipe ready');
      const again = await run('npx', ['webgpu-llm', 'setup'], { cwd: dir, env: withDriver });
      expect(again.stderr).toContain('[setup] lavapipe is already there');
      const r = JSON.parse((await run('npx', ['webgpu-llm', 'doctor', '--json'], { cwd: dir, env: withDriver })).stdout);
      expect(r.webgpu.lavapipe).toBe(icd.trim());
      const lvp = r.webgpu.adapters.find((a: { description: string }) => /llvmpipe/.test(a.description));
      expect(lvp.features).toContain('shader-f16');
      expect(lvp.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      expect(r.auto.device).toBe('webgpu');
      expect(r.hints).toEqual([]);
    },
    300_000,
  );
});
