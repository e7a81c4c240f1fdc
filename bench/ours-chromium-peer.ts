/**
 * Our CPU backend in headless Chromium (dist/browser.js in a page) as a bench peer of bench/cpu-compare.ts: the
 * browser's V8 runs the relaxed SIMD kernels (build/cpu-relaxed.wasm), which Node 20 cannot; `relaxedSimd` false
 * gives the SIMD128 ones there too. Served from loopback with cross-origin isolation (as bench/wllama-peer.ts), the
 * GGUF read over HTTP; token-id prompts go through the engine (llm.engine.addRequest) and each token is timed in the
 * page, as loadOurs does in Node. Needs a built dist/ (npm run build). One of the two per run: a second Chromium
 * launched in the same bench process closes its page at the first call (not understood yet).
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { BenchEngine, LoadSpec } from './cpu-compare-peers.js';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

const PAGE = `<!doctype html><meta charset="utf-8"><title>ours bench</title>
<script type="module">
import { LLM, SamplingParams } from '/dist/browser.js';
let llm;
window.load = async (o) => {
  llm = await LLM.create({
    model: new URL('/model.gguf', location.href).href, device: 'cpu', cpuThreads: o.threads, cpuRelaxedSimd: o.relaxed,
    maxNumSeqs: o.maxStreams, maxModelLen: o.maxLen, numGpuBlocksOverride: o.blocks, enablePrefixCaching: false,
    generationConfig: 'vllm', log: () => {},
  });
};
window.run = async ({ prompts, maxTokens }) => {
  const params = new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true, detokenize: false, outputKind: 'delta' });
  const t0 = performance.now();
  return Promise.all(prompts.map(async (ids) => {
    const times = [];
    for await (const out of llm.engine.addRequest({ prompt: { promptTokenIds: ids }, params })) {
      const now = performance.now() - t0;
      for (let k = 0; k < out.outputs[0].tokenIds.length; k++) times.push(now);
    }
    return times;
  }));
};
window.unload = () => llm.dispose();
</script>`;

/** Serves the page, dist/ and the model file, with cross-origin isolation. */
function serve(dist: string, model: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    let file: string | null = null;
    if (path === '/') return res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(PAGE);
    if (path === '/model.gguf') file = model;
    else if (path.startsWith('/dist/')) file = join(dist, normalize(path.slice('/dist/'.length)).replace(/^(\.\.[/\\])+/, ''));
    if (!file || !statSync(file, { throwIfNoEntry: false })?.isFile()) return res.writeHead(404, headers).end();
    const size = statSync(file).size;
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': size });
    res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    done({ server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/` });
  }));
}

/** Our CPU backend in headless Chromium (`CHROMIUM`, default /usr/bin/chromium) over the GGUF file. */
export async function loadOursChromium(s: LoadSpec, relaxedSimd: boolean): Promise<BenchEngine> {
  const { server, url } = await serve(resolve('dist'), s.model);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'] });
    const page: Page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => 'load' in window, null, { timeout: 30_000 }).catch(() => {
      throw new Error(`the page did not load: ${errors.join('; ') || 'no error'}`);
    });
    const blocks = s.maxStreams * Math.ceil(s.maxLen / 16) + 8;
    await page.evaluate((a) => (window as unknown as { load(a: unknown): Promise<void> }).load(a),
      { threads: s.threads, relaxed: relaxedSimd, maxStreams: s.maxStreams, maxLen: s.maxLen, blocks });
    const b = browser;
    return {
      name: relaxedSimd ? 'ours-chromium' : 'ours-chromium-simd128',
      run: (prompts, maxTokens) => page.evaluate((a) => (window as unknown as { run(a: unknown): Promise<number[][]> }).run(a), { prompts, maxTokens }),
      async dispose() {
        await page.evaluate(() => (window as unknown as { unload(): Promise<void> }).unload()).catch(() => {});
        await b.close();
        server.close();
      },
    };
  } catch (err) {
    await browser?.close();
    server.close();
    throw err;
  }
}
