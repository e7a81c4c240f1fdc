/**
 * Bench engines that run in headless Chromium (bench/wllama-peer.ts, bench/ours-chromium-peer.ts): a loopback
 * server gives the page at `/`, the files under `root` at `/<prefix>/...` and the model file at `/model.gguf` (whole,
 * or the bytes of a Range request), all with cross-origin isolation (SharedArrayBuffer for wasm threads); the page
 * defines window.load, run and unload.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { BenchEngine } from './cpu-compare-peers.js';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

function serveIsolated(page: string, prefix: string, root: string, model: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    let file: string | null = null;
    if (path === '/') return res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(page);
    if (path === '/model.gguf') file = model;
    else if (path.startsWith(`/${prefix}/`)) file = join(root, normalize(path.slice(prefix.length + 2)).replace(/^(\.\.[/\\])+/, ''));
    if (!file || !statSync(file, { throwIfNoEntry: false })?.isFile()) return res.writeHead(404, headers).end();
    const size = statSync(file).size;
    const type = { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes' };
    // Our loader reads a GGUF by Range requests, one per tensor (src/sources/url-source.ts): each gets its bytes
    // alone. Answered with the whole file, hundreds of 50 MB bodies filled the page's memory until Chromium closed it.
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let [start, end] = [0, size - 1];
    if (range) {
      [start, end] = [Number(range[1]), range[2] ? Math.min(Number(range[2]), size - 1) : size - 1];
      if (start > end) return res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` }).end();
      res.writeHead(206, { ...type, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
    } else res.writeHead(200, { ...type, 'Content-Length': size });
    if (req.method === 'HEAD' || size === 0) return res.end();
    createReadStream(file, { start, end }).pipe(res);
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    done({ server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/` });
  }));
}

export interface ChromiumEngineSpec {
  name: string;
  /** The page's HTML: it defines window.load(args), window.run({ prompts, maxTokens }) and window.unload(). */
  page: string;
  prefix: string;
  root: string;
  model: string;
  /** Calls window.load in the page once it is there. */
  load(page: Page, errors: string[]): Promise<void>;
  /** The prompts as the page's run takes them (default: the token ids). */
  prompts?(prompts: number[][]): unknown;
}

/** An engine in headless Chromium (`CHROMIUM`, default /usr/bin/chromium). */
export async function chromiumEngine(spec: ChromiumEngineSpec): Promise<BenchEngine> {
  const { server, url } = await serveIsolated(spec.page, spec.prefix, spec.root, spec.model);
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
    await spec.load(page, errors);
    const b = browser;
    const toPage = spec.prompts ?? ((p: number[][]) => p);
    return {
      name: spec.name,
      run: (prompts, maxTokens) => page.evaluate((a) => (window as unknown as { run(a: unknown): Promise<number[][]> }).run(a), { prompts: toPage(prompts), maxTokens }),
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
