/**
 * @wllama/wllama (llama.cpp's llama-server core compiled to WebAssembly) as a bench peer of bench/cpu-compare.ts.
 * wllama runs in a browser only (Web Workers, Blob URLs), so it runs in Debian's Chromium driven by playwright-core,
 * from a loopback server that sends the cross-origin-isolation headers (COOP/COEP: SharedArrayBuffer, so wllama's
 * multi-threaded build can run). Its `n_parallel` slots serve the streams, batched by llama-server's loop. Prompts
 * go in as text (wllama 3.13 fails on token-id prompts), one word per token (paddingText); each streamed chunk (one
 * token) is timed in the page.
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { BenchEngine, LoadSpec } from './cpu-compare-peers.js';
import { paddingText } from './smollm2-gguf.js';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

const PAGE = `<!doctype html><meta charset="utf-8"><title>wllama bench</title>
<script type="module">
import { Wllama } from '/wllama/esm/index.js';
let wllama;
window.load = async ({ threads, nCtx, nParallel }) => {
  wllama = new Wllama({ default: '/wllama/esm/wasm/wllama.wasm' }, { suppressNativeLog: true });
  wllama.setCompat(null); // no CDN: this page is offline
  const blob = await (await fetch('/model.gguf')).blob();
  await wllama.loadModel([blob], { n_threads: threads, n_ctx: nCtx, n_parallel: nParallel, n_batch: 512, kv_unified: true });
  return { multithread: wllama.isMultithread(), threads: wllama.getNumThreads(), isolated: self.crossOriginIsolated };
};
window.run = async ({ prompts, maxTokens }) => {
  const t0 = performance.now();
  return Promise.all(prompts.map(async (prompt) => {
    const times = [];
    const stream = await wllama.createCompletion({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true });
    for await (const chunk of stream) {
      if (chunk.choices?.[0]?.finish_reason == null || chunk.choices[0].text) times.push(performance.now() - t0);
    }
    return times.slice(0, maxTokens);
  }));
};
window.unload = () => wllama.exit();
</script>`;

/** Serves the page, wllama's package folder and the model file, with cross-origin isolation. */
function serve(pkg: string, model: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    let file: string | null = null;
    if (path === '/') return res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(PAGE);
    if (path === '/model.gguf') file = model;
    else if (path.startsWith('/wllama/')) file = join(pkg, normalize(path.slice('/wllama/'.length)).replace(/^(\.\.[/\\])+/, ''));
    if (!file || !statSync(file, { throwIfNoEntry: false })?.isFile()) return res.writeHead(404, headers).end();
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/` });
  }));
}

/** The @wllama/wllama package folder: `WLLAMA_DIR`, else node_modules. */
function wllamaDir(): string {
  if (process.env.WLLAMA_DIR) return process.env.WLLAMA_DIR;
  return dirname(createRequire(import.meta.url).resolve('@wllama/wllama/package.json'));
}

/** wllama in headless Chromium (`CHROMIUM`, default /usr/bin/chromium) over the GGUF file. */
export async function loadWllama(s: LoadSpec): Promise<BenchEngine> {
  const { server, url } = await serve(wllamaDir(), s.model);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'] });
    const page: Page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => 'load' in window);
    const info = await page.evaluate((a) => (window as unknown as { load(a: unknown): Promise<{ multithread: boolean; threads: number; isolated: boolean }> }).load(a),
      { threads: s.threads, nCtx: s.maxStreams * s.maxLen, nParallel: s.maxStreams });
    if (s.threads > 1 && !info.multithread) throw new Error(`wllama runs single-threaded (crossOriginIsolated ${info.isolated})`);
    const b = browser;
    return {
      name: 'wllama',
      run: (prompts, maxTokens) => page.evaluate((a) => (window as unknown as { run(a: unknown): Promise<number[][]> }).run(a), { prompts: prompts.map(paddingText), maxTokens }),
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
