/**
 * Our CPU backend in headless Chromium (dist/browser.js in a page) as a bench peer of bench/cpu-compare.ts: the
 * browser's V8 runs the relaxed SIMD kernels (build/cpu-relaxed.wasm), which Node 20 cannot; `relaxedSimd` false
 * gives the SIMD128 ones there too. Served from loopback with cross-origin isolation (as bench/wllama-peer.ts), the
 * GGUF read over HTTP; token-id prompts go through the engine (llm.engine.addRequest) and each token is timed in the
 * page, as loadOurs does in Node. Needs a built dist/ (npm run build). The GGUF is read by Range requests, one per
 * tensor (src/sources/url-source.ts), which bench/chromium-engine.ts's server answers with those bytes alone.
 */
import { resolve } from 'node:path';
import type { BenchEngine, LoadSpec } from './cpu-compare-peers.js';
import { chromiumEngine } from './chromium-engine.js';

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

/** Our CPU backend in headless Chromium (`CHROMIUM`, default /usr/bin/chromium) over the GGUF file. */
export function loadOursChromium(s: LoadSpec, relaxedSimd: boolean): Promise<BenchEngine> {
  const blocks = s.maxStreams * Math.ceil(s.maxLen / 16) + 8;
  return chromiumEngine({
    name: relaxedSimd ? 'ours-chromium' : 'ours-chromium-simd128',
    page: PAGE,
    prefix: 'dist',
    root: resolve('dist'),
    model: s.model,
    load: (page) => page.evaluate((a) => (window as unknown as { load(a: unknown): Promise<void> }).load(a),
      { threads: s.threads, relaxed: relaxedSimd, maxStreams: s.maxStreams, maxLen: s.maxLen, blocks }),
  });
}
