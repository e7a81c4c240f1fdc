/**
 * The runtime matrix (issue 18): the built package (dist/) with its embedded default model gives Node's greedy token
 * ids everywhere. Node without an adapter (Vulkan driver hidden) through device 'auto' -> the CPU backend; Deno and
 * Bun (npm packages `deno`, `bun`) running test/runtimes/generate.mjs; Cloudflare's workerd (miniflare) and Vercel's
 * edge-runtime running test/runtimes/edge-app.mjs, bundled with esbuild as wrangler and Vercel do, the model's files
 * and the precompiled wasm given to the isolate (no filesystem, no wasm compiled from bytes). A runtime whose binary
 * is not installed is skipped with one line saying so. Headless Chromium with WebGPU off: dist/browser.js falls back to
 * the CPU backend in the page and in a Web Worker (WorkerLLM).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { noAdapterEnv } from './helpers/pack.js';
import { DEFAULT_MODEL, REPO } from './helpers/paths.js';

const run = promisify(execFile);
const RUN = JSON.parse(readFileSync(join(REPO, 'test/runtimes/prompts.json'), 'utf8')) as { prompts: string[]; maxTokens: number };
const SCRIPT = join(REPO, 'test/runtimes/generate.mjs');
const BIN = join(REPO, 'node_modules/.bin');
const built = existsSync(join(REPO, 'dist/index.js')) && existsSync(join(REPO, 'dist/wasm/cpu.wasm'));

interface Result {
  ids: number[][];
  text: string;
  logs: string[];
}

/** Node's greedy ids for the run's prompts, in this process on the CPU backend. */
let nodeIds: number[][];
let nodeTexts: string[];
beforeAll(async () => {
  const llm = await LLM.create({ model: DEFAULT_MODEL, device: 'cpu' });
  const outs = await llm.generate(RUN.prompts, new SamplingParams({ temperature: 0, maxTokens: RUN.maxTokens }));
  nodeIds = outs.map((o) => o.outputs[0].tokenIds);
  nodeTexts = outs.map((o) => o.outputs[0].text);
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
    const { stdout } = await run(bin, args, { cwd: REPO, env: noAdapterEnv(), maxBuffer: 16 << 20 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Result;
    expect(out.logs).toEqual(["webgpu-llm: device 'auto': the CPU backend (WebAssembly), no WebGPU adapter"]);
    expect(out.ids).toEqual(nodeIds);
    expect(out.ids.every((ids) => ids.length === RUN.maxTokens)).toBe(true);
    expect(out.text).toMatch(/^, a little girl named Lily/);
  });
});

/** The isolate's assets: dist/wasm's modules and the embedded model's files. */
const WASM = built ? ['core', 'cpu'].map((n) => ({ name: n, bytes: readFileSync(join(REPO, `dist/wasm/${n}.wasm`)) })) : [];
const MODEL_FILES = readdirSync(DEFAULT_MODEL);

/** esbuild bundles `entry` into one file (format esm or iife), leaving the isolate's asset imports to it. */
async function bundle(entry: string, format: 'esm' | 'iife'): Promise<string> {
  const esbuild = await import('esbuild');
  const out = await esbuild.build({ entryPoints: [join(REPO, 'test/runtimes', entry)], bundle: true, write: false, format, platform: 'browser', target: 'es2022', external: ['./wasm/*', './model/*'], logLevel: 'silent' });
  return out.outputFiles[0].text;
}

/** Asks an isolate's handler for the ids and one OpenAI completion; checks both against Node. */
async function expectNodeGreedy(fetchIn: (url: string, init?: RequestInit) => Promise<{ status: number; json(): Promise<unknown> }>): Promise<void> {
  const ids = (await (await fetchIn('http://edge/ids')).json()) as { ids: number[][]; logs: string[] };
  expect(ids.logs).toEqual(["webgpu-llm: device 'auto': the CPU backend (WebAssembly), WebGPU unavailable: WebGPU is not available in this runtime (navigator.gpu is undefined): use device 'cpu'"]);
  expect(ids.ids).toEqual(nodeIds);
  const res = await fetchIn('http://edge/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tinystories', prompt: RUN.prompts[0], max_tokens: RUN.maxTokens, temperature: 0 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
  expect(body.choices[0].text).toBe(nodeTexts[0]);
  expect(body.usage.completion_tokens).toBe(RUN.maxTokens);
}

describe.skipIf(!built)('edge isolates: the OpenAI fetch handler with the embedded model inside', () => {
  it('Cloudflare workerd (miniflare): wasm as CompiledWasm modules, the model as Data and Text modules', async () => {
    if (!existsSync(join(REPO, 'node_modules/miniflare'))) return void console.warn('skipped: workerd: miniflare is not installed (npm install)');
    const { Miniflare } = await import('miniflare');
    const root = mkdtempSync(join(tmpdir(), 'workerd-'));
    const modules = [
      { type: 'ESModule' as const, path: join(root, 'worker.mjs'), contents: await bundle('workerd.mjs', 'esm') },
      ...WASM.map((w) => ({ type: 'CompiledWasm' as const, path: join(root, `wasm/${w.name}.wasm`), contents: w.bytes })),
      ...MODEL_FILES.map((f) => ({ type: f.endsWith('.json') ? ('Text' as const) : ('Data' as const), path: join(root, 'model', f), contents: f.endsWith('.json') ? readFileSync(join(DEFAULT_MODEL, f), 'utf8') : readFileSync(join(DEFAULT_MODEL, f)) })),
    ];
    const mf = new Miniflare({ modules, modulesRoot: root, compatibilityDate: '2025-09-01' });
    try {
      await expectNodeGreedy((url, init) => mf.dispatchFetch(url, init as never) as never);
    } finally {
      await mf.dispose();
    }
  });

  it("Vercel's edge-runtime: precompiled modules and ArrayBuffers given to the isolate, no wasm compiled from bytes there", async () => {
    if (!existsSync(join(REPO, 'node_modules/edge-runtime'))) return void console.warn('skipped: edge-runtime is not installed (npm install)');
    const { EdgeRuntime } = await import('edge-runtime');
    const modules = Object.fromEntries(await Promise.all(WASM.map(async (w) => [w.name, await WebAssembly.compile(w.bytes)])));
    const model = Object.fromEntries(MODEL_FILES.map((f) => { const b = readFileSync(join(DEFAULT_MODEL, f)); return [f, b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)]; }));
    const runtime = new EdgeRuntime({
      initialCode: await bundle('edge-runtime.mjs', 'iife'),
      // As Vercel's production isolates: no eval, no wasm compiled from bytes.
      codeGeneration: { strings: false, wasm: false },
      extend: (context: Record<string, unknown>) => Object.assign(context, { __EDGE_ASSETS__: { wasm: modules, model } }),
    } as never);
    await expectNodeGreedy((url, init) => runtime.dispatchFetch(url, init as never) as never);
    // Without the precompiled modules, the error says what to pass.
    const bare = new EdgeRuntime({
      initialCode: await bundle('edge-runtime.mjs', 'iife'),
      codeGeneration: { strings: false, wasm: false },
      extend: (context: Record<string, unknown>) => Object.assign(context, { __EDGE_ASSETS__: { model } }),
    } as never);
    const failed = await bare.dispatchFetch('http://edge/ids');
    expect(failed.status).toBe(500);
    expect(((await failed.json()) as { error: { message: string } }).error.message).toMatch(/core\.wasm cannot be compiled from bytes in this runtime \(.*disallowed.*\): pass the precompiled module, e\.g\. edgePlatform\(\{ wasm: \{ core \} \}\)/);
  });
});

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The page: the embedded model from beside dist/ with device 'auto', in the page and in a worker. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>cpu</title>
<script type="module">
import { LLM, WorkerLLM, SamplingParams } from '/dist/browser.js';
window.runCpu = async ({ prompts, maxTokens }) => {
  const params = new SamplingParams({ temperature: 0, maxTokens });
  const gpu = navigator.gpu ? String(await navigator.gpu.requestAdapter()) : 'no navigator.gpu';
  const logs = [];
  const llm = await LLM.create({ device: 'auto', log: (line) => logs.push(line) });
  const page = (await llm.generate(prompts, params)).map((o) => o.outputs[0].tokenIds);
  await llm.dispose();
  const wllm = await WorkerLLM.create({ device: 'auto' });
  const worker = (await wllm.generate(prompts, params)).map((o) => o.outputs[0].tokenIds);
  await wllm.dispose();
  return { gpu, logs, page, worker };
};
window.ready = true;
</script>`;

describe.skipIf(!built || !existsSync(join(REPO, 'dist/browser.js')))('headless Chromium with WebGPU off', () => {
  it('falls back to the CPU backend in the page and in a worker, with Node\'s greedy ids', async () => {
    if (!existsSync(CHROMIUM)) return void console.warn(`skipped: Chromium: ${CHROMIUM} is not installed (bash scripts/setup-browser.sh)`);
    const { chromium } = await import('playwright-core');
    const { FakeHub } = await import('./helpers/fake-hub.js');
    const pageDir = mkdtempSync(join(tmpdir(), 'cpu-page-'));
    writeFileSync(join(pageDir, 'index.html'), PAGE);
    const server = await FakeHub.start({ repos: {}, mounts: { '/dist/': join(REPO, 'dist'), '/models/': join(REPO, 'models'), '/page/': pageDir } });
    // WebGPU off (no --enable-unsafe-webgpu, no GPU process): no adapter, whatever the machine has.
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-features=WebGPU', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${server.url}/page/`);
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, null, { timeout: 30_000 });
      const out = await page.evaluate((args) => (window as unknown as { runCpu: (a: unknown) => Promise<{ gpu: string; logs: string[]; page: number[][]; worker: number[][] }> }).runCpu(args), RUN);
      // Chromium keeps navigator.gpu with its GPU process off and gives no adapter; builds without WebGPU have none.
      const why = out.gpu === 'null' ? 'no WebGPU adapter' : 'WebGPU unavailable: WebGPU is not available in this browser (navigator.gpu is undefined)';
      expect(['null', 'no navigator.gpu']).toContain(out.gpu);
      expect(out.logs).toEqual([`webgpu-llm: device 'auto': the CPU backend (WebAssembly), ${why}`]);
      expect(out.page).toEqual(nodeIds);
      expect(out.worker).toEqual(nodeIds);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
