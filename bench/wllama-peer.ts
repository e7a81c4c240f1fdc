/**
 * @wllama/wllama (llama.cpp's llama-server core compiled to WebAssembly) as a bench peer of bench/cpu-compare.ts.
 * wllama runs in a browser only (Web Workers, Blob URLs), so it runs in Debian's Chromium driven by playwright-core,
 * from a loopback server that sends the cross-origin-isolation headers (COOP/COEP: SharedArrayBuffer, so wllama's
 * multi-threaded build can run). Its `n_parallel` slots serve the streams, batched by llama-server's loop. Prompts
 * go in as text (wllama 3.13 fails on token-id prompts), one word per token (the model's LoadSpec.text); each streamed chunk (one
 * token) is timed in the page. n_gpu_layers 0: wllama 3 offloads every layer to WebGPU where the page has an adapter
 * (its default), and this compares CPU backends. Its speed here (2026-12-07, Debian's Chromium, Q4_0 SmolLM2-135M
 * shapes, 1 thread: 14-15 tok/s prefill, 10-11 decode) is the build's own: single-threaded, SIMD128 in the module,
 * no WebGPU adapter in headless Chromium, the same with V8's optimizing tier forced (--no-liftoff).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { BenchEngine, LoadSpec } from './cpu-compare-peers.js';
import { chromiumEngine } from './chromium-engine.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>wllama bench</title>
<script type="module">
import { Wllama } from '/wllama/esm/index.js';
let wllama;
window.load = async ({ threads, nCtx, nParallel }) => {
  wllama = new Wllama({ default: '/wllama/esm/wasm/wllama.wasm' }, { suppressNativeLog: true });
  wllama.setCompat(null); // no CDN: this page is offline
  const blob = await (await fetch('/model.gguf')).blob();
  await wllama.loadModel([blob], { n_threads: threads, n_ctx: nCtx, n_parallel: nParallel, n_batch: 512, kv_unified: true, n_gpu_layers: 0 });
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

/** The @wllama/wllama package folder: `WLLAMA_DIR`, else node_modules. */
function wllamaDir(): string {
  if (process.env.WLLAMA_DIR) return process.env.WLLAMA_DIR;
  return dirname(createRequire(import.meta.url).resolve('@wllama/wllama/package.json'));
}

/** wllama in headless Chromium (`CHROMIUM`, default /usr/bin/chromium) over the GGUF file. */
export function loadWllama(s: LoadSpec): Promise<BenchEngine> {
  return chromiumEngine({
    name: 'wllama',
    page: PAGE,
    prefix: 'wllama',
    root: wllamaDir(),
    model: s.model,
    async load(page) {
      const info = await page.evaluate((a) => (window as unknown as { load(a: unknown): Promise<{ multithread: boolean; threads: number; isolated: boolean }> }).load(a),
        { threads: s.threads, nCtx: s.maxStreams * s.maxLen, nParallel: s.maxStreams });
      if (s.threads > 1 && !info.multithread) throw new Error(`wllama runs single-threaded (crossOriginIsolated ${info.isolated})`);
    },
    prompts: (prompts) => prompts.map((ids) => s.text(ids)),
  });
}
