/**
 * The browser build (dist/browser.js) in headless Chromium (Debian's `chromium`, driven by playwright-core; WebGPU
 * on SwiftShader, which has no shader-f16, so both sides run the f32 path): greedy token ids equal Node's for the
 * same prompts on stories260K (URL prefix), tinystories-656K (hub repo id through a loopback hub, its CDN on another
 * host, cached with the Cache API) and the embedded default model; and the demo page streams text into the DOM
 * (screenshot: test-results/demo.png). scripts/setup-browser.sh installs Chromium; without it these tests skip.
 * CHROMIUM=/path picks another browser binary.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import { FakeHub } from './helpers/fake-hub.js';
import { loadLLM } from './helpers/llm.js';
import { kquantModel, writeKquantGguf } from './helpers/kquant-model.js';
import { DEFAULT_MODEL, loadGoldens, MODELS, modelDir, REPO } from './helpers/paths.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DIST = join(REPO, 'dist');
const goldens = loadGoldens();
/** The goldens' prompts (the same four for both models). */
const PROMPTS = goldens['stories260K'].prompts.map((p) => p.text);
const MAX_TOKENS = 24;
/**
 * Greedy steps whose golden (Hugging Face) margin between the top two logits is below this are near-ties: SwiftShader
 * and lavapipe round f32 differently by ~1e-4 on logits (stories260K has a step with margin 1.7e-4, where they
 * pick differently). Ids are compared up to the first such step, exclusive; everything else must match exactly.
 */
const TIE = 1e-3;

/**
 * Asserts Node's and the browser's greedy ids equal, prompt by prompt (EOS included), up to the first near-tie;
 * returns the number of steps compared.
 */
function expectSameGreedy(model: string | null, web: number[][], node: number[][]): number {
  let compared = 0;
  for (let i = 0; i < PROMPTS.length; i++) {
    const margins = model ? goldens[model].prompts[i].greedy_margins.slice(0, MAX_TOKENS) : [];
    const tie = margins.findIndex((m) => m < TIE);
    const n = tie < 0 ? Infinity : tie;
    expect(web[i].slice(0, n), `prompt ${i} (${PROMPTS[i]})`).toEqual(node[i].slice(0, n));
    compared += Math.min(n, node[i].length);
  }
  return compared;
}
/** The options both sides load with: f32 (SwiftShader has no shader-f16) and a small KV cache. */
const LOAD = { dtype: 'float32', kvCacheMemoryBytes: 32 << 20, maxNumSeqs: 16 } as const;

/** A page that exposes `runModel(args)`: load with dist/browser.js, greedy-generate, report ids and downloads. */
const HARNESS = `<!doctype html><meta charset="utf-8"><title>harness</title>
<script type="module">
import { LLM, SamplingParams } from '/dist/browser.js';
window.runModel = async ({ model, prompts, maxTokens, load }) => {
  const progress = [];
  const llm = await LLM.create({ model, ...load, onProgress: (p) => progress.push(p) });
  try {
    const outs = await llm.generate(prompts, new SamplingParams({ temperature: 0, maxTokens }));
    return { ids: outs.map((o) => o.outputs[0].tokenIds), texts: outs.map((o) => o.outputs[0].text), progress };
  } finally {
    await llm.dispose();
  }
};
// Worker mode: the same greedy run through WorkerLLM, then a streamed request aborted after its third token
// while the page's thread counts timer ticks (it stays free while the worker generates).
window.runWorker = async ({ model, prompts, maxTokens, load }) => {
  const { WorkerLLM } = await import('/dist/browser.js');
  const llm = await WorkerLLM.create({ model, ...load });
  try {
    const outs = await llm.generate(prompts, new SamplingParams({ temperature: 0, maxTokens }));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const ctl = new AbortController();
    const deltas = [];
    let last = null;
    const stream = llm.engine.addRequest({ prompt: prompts[0], params: new SamplingParams({ temperature: 0, maxTokens: 200, ignoreEos: true, outputKind: 'delta' }), signal: ctl.signal });
    for await (const out of stream) {
      deltas.push(out.outputs[0].tokenIds.length);
      last = out;
      if (deltas.length === 3) ctl.abort();
    }
    clearInterval(timer);
    return { ids: outs.map((o) => o.outputs[0].tokenIds), deltas, finishReason: last.outputs[0].finishReason, ticks, chat: llm.hasChatTemplate };
  } finally {
    await llm.dispose();
  }
};
window.harnessReady = true;
</script>`;

const canRun = existsSync(CHROMIUM) && existsSync(join(DIST, 'browser.js')) && existsSync(join(DIST, 'cli.js'));

describe.skipIf(!canRun)('the browser build in headless Chromium', () => {
  let hub: FakeHub;
  let browser: Browser;
  let page: Page;
  /** A random Llama of width 256 as a Q4_K_M GGUF (test/helpers/kquant-model.ts), served from the harness folder. */
  let kquantFile: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const pageDir = mkdtempSync(join(tmpdir(), 'browser-harness-'));
    writeFileSync(join(pageDir, 'index.html'), HARNESS);
    kquantFile = writeKquantGguf(await kquantModel(), 'Q4_K_M', pageDir);
    hub = await FakeHub.start({
      repos: { 'test-org/tinystories-656K': modelDir('tinystories-656K') },
      // The package layout the bundle expects (dist/ beside models/), the demo, and the shared test models.
      mounts: { '/dist/': DIST, '/models/': join(REPO, 'models'), '/shared-models/': MODELS, '/harness/': pageDir },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // --no-sandbox: CI runs as root. No network beyond loopback is touched.
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps'],
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // 404s are expected: the loader probes optional files (generation_config.json, ...) with HEAD.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
    await page.goto(`${hub.url}/harness/`);
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true, null, { timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.close();
  });

  const inBrowser = (model: string | undefined, load: Record<string, unknown> = {}) =>
    page.evaluate(
      (args) => (window as unknown as { runModel: (a: unknown) => Promise<{ ids: number[][]; texts: string[]; progress: { phase?: string; file: string; loadedBytes: number; totalBytes: number }[] }> }).runModel(args),
      { model, prompts: PROMPTS, maxTokens: MAX_TOKENS, load: { ...LOAD, ...load } },
    );

  const inNode = async (model: string) => {
    const llm = await loadLLM(model, LOAD);
    try {
      const outs = await llm.generate(PROMPTS, new SamplingParams({ temperature: 0, maxTokens: MAX_TOKENS }));
      return outs.map((o) => o.outputs[0].tokenIds);
    } finally {
      await llm.dispose();
    }
  };

  it('has WebGPU in the page', async () => {
    const adapter = await page.evaluate(async () => {
      const a = await navigator.gpu?.requestAdapter();
      return a ? { arch: a.info.architecture, f16: a.features.has('shader-f16') } : null;
    });
    expect(adapter, 'navigator.gpu.requestAdapter() gave nothing: is --enable-unsafe-webgpu honoured?').not.toBeNull();
  });

  it('gives stories260K (URL prefix) the same greedy tokens as Node', async () => {
    const web = await inBrowser('/shared-models/stories260K/');
    // All steps but the last 6 of the second prompt, whose 19th step is a near-tie (golden margin 1.7e-4).
    expect(expectSameGreedy('stories260K', web.ids, await inNode(modelDir('stories260K')))).toBe(PROMPTS.length * MAX_TOKENS - 6);
    expect(pageErrors).toEqual([]);
  });

  it('gives tinystories-656K (hub repo id, Cache API) the same greedy tokens as Node, and reloads it offline', async () => {
    const web = await inBrowser('test-org/tinystories-656K', { hfEndpoint: hub.url });
    const node = await inNode(modelDir('tinystories-656K'));
    expect(expectSameGreedy('tinystories-656K', web.ids, node)).toBe(node.flat().length); // no near-tie: every step
    // The weights came through the CDN (another host), with progress up to their full size.
    expect(hub.requests.some((r) => r.path.startsWith('/cdn-lfs/') && r.method === 'GET')).toBe(true);
    const weights = web.progress.filter((p) => p.file === 'model.safetensors' && p.phase !== 'upload');
    expect(weights.at(-1)?.loadedBytes).toBe(weights.at(-1)?.totalBytes);
    expect(weights.at(-1)?.totalBytes).toBeGreaterThan(1_000_000);

    hub.requests.length = 0;
    const again = await inBrowser('test-org/tinystories-656K', { hfEndpoint: hub.url, offline: true });
    expect(again.ids).toEqual(web.ids);
    // No download progress offline; only the upload to the GPU reports.
    expect(again.progress.filter((p) => p.phase !== 'upload')).toEqual([]);
    expect(again.progress.at(-1)).toMatchObject({ phase: 'upload', file: 'model.safetensors' });
    expect(hub.hubRequests()).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('loads a Q4_K_M GGUF by URL (Range reads, k-quant kernels) and gives Node\'s greedy ids up to near ties', async () => {
    const web = await inBrowser('/harness/random-Q4_K_M.gguf');
    const llm = await loadLLM(kquantFile, LOAD);
    let compared = 0;
    try {
      const outs = await llm.generate(PROMPTS, new SamplingParams({ temperature: 0, maxTokens: MAX_TOKENS, logprobs: 2 }));
      outs.forEach((o, i) => {
        for (let s = 0; s < MAX_TOKENS; s++) {
          // A random model has near ties, where two correct f32 implementations may part.
          const [a, b] = [...o.outputs[0].logprobs![s].values()].map((l) => l.logprob).sort((x, y) => y - x);
          if (a - b < 1e-3) break;
          expect(web.ids[i][s], `prompt ${i} step ${s}`).toBe(o.outputs[0].tokenIds[s]);
          compared++;
        }
      });
    } finally {
      await llm.dispose();
    }
    expect(compared).toBeGreaterThanOrEqual(PROMPTS.length);
    // Only the header was fetched before the tensors streamed: no whole-file GET.
    expect(hub.requests.filter((r) => r.path.endsWith('.gguf') && r.method === 'GET' && !r.range)).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('loads the embedded default model from beside dist/ and matches Node', async () => {
    const web = await inBrowser(undefined);
    const node = await inNode(DEFAULT_MODEL);
    expect(expectSameGreedy(null, web.ids, node)).toBe(node.flat().length);
    expect(pageErrors).toEqual([]);
  });

  it('runs the engine in a Web Worker behind WorkerLLM: same tokens, streaming, abort, a free page thread', async () => {
    const main = await inBrowser('/shared-models/stories260K/');
    const worker = await page.evaluate(
      (args) => (window as unknown as { runWorker: (a: unknown) => Promise<{ ids: number[][]; deltas: number[]; finishReason: string; ticks: number; chat: boolean }> }).runWorker(args),
      { model: '/shared-models/stories260K/', prompts: PROMPTS, maxTokens: MAX_TOKENS, load: LOAD },
    );
    expect(worker.ids).toEqual(main.ids); // same device, same kernels: identical
    expect(worker.deltas.length).toBeGreaterThanOrEqual(3);
    expect(worker.deltas.length).toBeLessThan(200); // stopped long before maxTokens
    expect(worker.finishReason).toBe('abort');
    expect(worker.ticks).toBeGreaterThan(0);
    expect(worker.chat).toBe(false);
    expect(pageErrors).toEqual([]);
  });

  it('runs the demo page (`webgpu-llm demo`): streams a completion into the DOM with tokens/s, and a chat view for chat models', async () => {
    const cli = spawn(process.execPath, [join(DIST, 'cli.js'), 'demo', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const demo = await browser.newPage({ viewport: { width: 960, height: 760 } });
    const errors: string[] = [];
    demo.on('pageerror', (e) => errors.push(e.message));
    try {
      const url = await new Promise<string>((ok, fail) => {
        let err = '';
        cli.stderr.on('data', (d: Buffer) => {
          err += d;
          const m = /open (http:\/\/\S+)/.exec(err);
          if (m) ok(m[1]);
        });
        cli.on('exit', (code) => fail(new Error(`webgpu-llm demo exited (${code}): ${err}`)));
      });
      await demo.goto(url);
      await demo.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('Loaded'), null, { timeout: 60_000 });
      expect(await demo.locator('#complete-view').isVisible()).toBe(true);
      await demo.fill('#prompt', 'Once upon a time');
      await demo.fill('#max-tokens', '60');
      // Watch the text grow: more than one distinct length seen means it streamed, not arrived at once.
      await demo.evaluate(() => {
        const w = window as unknown as { lengths: number[] };
        w.lengths = [];
        new MutationObserver(() => w.lengths.push(document.getElementById('output-text')!.textContent!.length)).observe(document.getElementById('output-text')!, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });
      await demo.click('#generate');
      await demo.waitForFunction(() => /finished: (length|stop)/.test(document.getElementById('stats')?.textContent ?? ''), null, { timeout: 60_000 });
      const text = await demo.locator('#output-text').textContent();
      expect(text!.length).toBeGreaterThan(20);
      const lengths = await demo.evaluate(() => (window as unknown as { lengths: number[] }).lengths);
      expect(new Set(lengths).size).toBeGreaterThan(3);
      expect(await demo.locator('#stats').textContent()).toMatch(/^\d+ tokens · [\d.]+ tokens\/s/);
      mkdirSync(join(REPO, 'test-results'), { recursive: true });
      await demo.screenshot({ path: join(REPO, 'test-results/demo.png'), fullPage: true });

      // A model with a chat template gets the chat view; the reply streams into a bubble. (From another origin:
      // the hub server, which sends CORS headers as the hub does.)
      await demo.fill('#model', `${hub.url}/shared-models/tiny-random-llama2/`);
      await demo.click('#load');
      await demo.waitForFunction(() => document.getElementById('status')?.textContent?.includes('chat view'), null, { timeout: 60_000 });
      expect(await demo.locator('#complete-view').isVisible()).toBe(false);
      await demo.fill('#chat-input', 'Hello there');
      await demo.click('#send');
      await demo.waitForFunction(
        () => /finished: (length|stop)/.test(document.getElementById('stats')?.textContent ?? '') && document.querySelector('.msg.assistant') !== null,
        null,
        { timeout: 60_000 },
      );
      expect(await demo.locator('.msg.user').textContent()).toBe('Hello there');
      expect((await demo.locator('.msg.assistant').textContent())!.length).toBeGreaterThan(0);
      await demo.screenshot({ path: join(REPO, 'test-results/demo-chat.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await demo.close();
      cli.kill();
    }
  });
});
