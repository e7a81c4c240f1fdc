/**
 * The engine as vLLM users rely on it: continuous batching (requests join a running batch), abort with exact block
 * accounting, prefix caching, preemption under a tiny KV pool, and the stats behind the metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SamplingParams, type LLM, type RequestOutput } from '../bindings/node/index.js';
import { modelDir } from './helpers/paths.js';
import { countRunAhead, loadLLM } from './helpers/llm.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';

const kvOf = (llm: LLM) =>
  (llm.engine as unknown as { scheduler: { kvCacheManager: { numFreeBlocks: number; numBlocks: number } } }).scheduler.kvCacheManager;

/** Token ids of a story-like prompt of `n` tokens, different per `seed`. */
const promptOf = (n: number, seed: number) => [1, ...Array.from({ length: n - 1 }, (_, i) => 100 + ((seed * 37 + i * 11) % 1500))];

async function collect(stream: AsyncIterable<RequestOutput>): Promise<RequestOutput> {
  let last: RequestOutput | undefined;
  for await (const o of stream) last = o;
  return last!;
}

// Every test runs without and with async scheduling (the next step submitted before this one's tokens are known;
// the default, so that suite passes no option).
for (const asyncScheduling of [false, undefined]) describe(`tinystories-656K engine${asyncScheduling === false ? ', one step at a time' : ', async scheduling (default)'}`, () => {
  let llm: LLM;
  let ahead: { n: number };
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'), { maxNumSeqs: 16, maxNumBatchedTokens: 256, asyncScheduling });
    ahead = countRunAhead(llm);
  });
  afterAll(() => {
    // Async scheduling ran ahead, and only then.
    if (asyncScheduling !== false) expect(ahead.n).toBeGreaterThan(0);
    else expect(ahead.n).toBe(0);
    return llm.dispose();
  });

  it('32 concurrent requests of different lengths and params equal each run alone, token for token', async () => {
    const reqs = Array.from({ length: 32 }, (_, i) => ({
      prompt: { promptTokenIds: promptOf(3 + ((i * 7) % 60), i) },
      params: new SamplingParams({
        temperature: i % 3 === 0 ? 0.8 : 0,
        seed: i,
        maxTokens: 4 + ((i * 5) % 40),
        ignoreEos: i % 2 === 0,
        ...(i % 5 === 0 ? { topK: 20 } : {}),
      }),
    }));
    // Half arrive at once, the rest while the first ones run.
    const streams = reqs.slice(0, 16).map((r) => collect(llm.engine.addRequest(r)));
    await new Promise((r) => setTimeout(r, 50));
    streams.push(...reqs.slice(16).map((r) => collect(llm.engine.addRequest(r))));
    const together = await Promise.all(streams);
    for (let i = 0; i < reqs.length; i++) {
      const [alone] = await llm.generate(reqs[i].prompt, reqs[i].params);
      expect(together[i].outputs[0].tokenIds, `request ${i}`).toEqual(alone.outputs[0].tokenIds);
    }
    expect(kvOf(llm).numFreeBlocks).toBe(kvOf(llm).numBlocks);
  });

  if (asyncScheduling !== false) {
    it('gives the outputs of the engine without it: greedy requests ending on EOS or length, with sampled ones among them', async () => {
      const sync = await loadLLM(modelDir('tinystories-656K'), { maxNumSeqs: 16, maxNumBatchedTokens: 256, asyncScheduling: false });
      const prompts = Array.from({ length: 12 }, (_, i) => ({ promptTokenIds: promptOf(4 + 5 * i, 300 + i) }));
      // (A step with a sampled row waits for its tokens: the sampled requests end early, the rest run ahead.)
      const params = prompts.map((_, i) => new SamplingParams({ temperature: i % 4 === 3 ? 0.7 : 0, seed: i, maxTokens: i % 4 === 3 ? 8 : 20 + 9 * i }));
      const n0 = ahead.n;
      const [a, b] = [await llm.generate(prompts, params), await sync.generate(prompts, params)];
      expect(ahead.n).toBeGreaterThan(n0);
      expect(a.map((o) => o.outputs[0].tokenIds)).toEqual(b.map((o) => o.outputs[0].tokenIds));
      expect(a.map((o) => o.outputs[0].finishReason)).toEqual(b.map((o) => o.outputs[0].finishReason));
      expect(b.some((o) => o.outputs[0].finishReason === 'stop')).toBe(true); // some ended on EOS
      expect(kvOf(llm).numFreeBlocks).toBe(kvOf(llm).numBlocks);
      await sync.dispose();
    });
  }

  it('aborting half of the requests mid-stream frees exactly their blocks; the others are unaffected', async () => {
    const kv = kvOf(llm);
    const start = kv.numFreeBlocks;
    const params = new SamplingParams({ temperature: 0, maxTokens: 48, ignoreEos: true });
    const controllers = Array.from({ length: 12 }, () => new AbortController());
    const results = controllers.map(async (c, i) => {
      const stream = llm.engine.addRequest({ prompt: { promptTokenIds: promptOf(20 + i, 100 + i) }, params, signal: c.signal });
      let last: RequestOutput | undefined;
      for await (const o of stream) {
        last = o;
        if (i % 2 === 1 && o.outputs[0].tokenIds.length >= 5) c.abort();
      }
      return last!;
    });
    const outs = await Promise.all(results);
    for (let i = 0; i < outs.length; i++) {
      if (i % 2 === 1) {
        expect(outs[i].outputs[0].finishReason).toBe('abort');
        expect(outs[i].outputs[0].tokenIds.length).toBeLessThan(48);
      } else {
        const [alone] = await llm.generate({ promptTokenIds: promptOf(20 + i, 100 + i) }, params);
        expect(outs[i].outputs[0].tokenIds).toEqual(alone.outputs[0].tokenIds);
      }
    }
    expect(kv.numFreeBlocks).toBe(start);
    // engine.abort(requestId) works too, also for a request still waiting.
    const s = llm.engine.addRequest({ prompt: 'Tom', params, requestId: 'to-abort' });
    llm.engine.abort('to-abort');
    const last = await collect(s);
    expect(last.outputs[0].finishReason).toBe('abort');
    expect(kv.numFreeBlocks).toBe(start);
  });

  it('a stop string found while the next step runs ends its request there, drops that step\'s token and frees its blocks', async () => {
    // Outputs are detokenized while the GPU runs the next step, which already holds the stopped request.
    const kv = kvOf(llm);
    const start = kv.numFreeBlocks;
    const greedy = new SamplingParams({ temperature: 0, maxTokens: 40, ignoreEos: true });
    const [free] = await llm.generate({ promptTokenIds: promptOf(12, 7) }, greedy);
    const words = free.outputs[0].text.split(' ').filter((w) => w.length >= 3);
    const stop = ` ${words[Math.floor(words.length / 2)]}`;
    const at = free.outputs[0].text.indexOf(stop);
    expect(at).toBeGreaterThan(0);
    const params = greedy.clone({ stop: [stop] });
    const others = [1, 2, 3].map((i) => collect(llm.engine.addRequest({ prompt: { promptTokenIds: promptOf(10 + i, 50 + i) }, params: greedy })));
    const out = (await collect(llm.engine.addRequest({ prompt: { promptTokenIds: promptOf(12, 7) }, params }))).outputs[0];
    expect(out.finishReason).toBe('stop');
    expect(out.stopReason).toBe(stop);
    expect(out.text).toBe(free.outputs[0].text.slice(0, at));
    // Token ids end with the token that completed the stop string, as they would without the overlap.
    expect(out.tokenIds).toEqual(free.outputs[0].tokenIds.slice(0, out.tokenIds.length));
    expect(llm.engine.tokenizer.decode(out.tokenIds)).toContain(stop);
    expect(llm.engine.tokenizer.decode(out.tokenIds.slice(0, -1))).not.toContain(stop);
    for (const o of await Promise.all(others)) expect(o.outputs[0].tokenIds).toHaveLength(40);
    expect(kv.numFreeBlocks).toBe(start);
  });

  it('reuses the KV blocks of a shared 3-block prefix, counted, with the same output', async () => {
    const before = llm.engine.stats;
    const prefix = promptOf(48, 7); // 3 full blocks of 16
    const a = [...prefix, 500, 501, 502];
    const b = [...prefix, 600, 601];
    const params = new SamplingParams({ temperature: 0, maxTokens: 16, ignoreEos: true });
    await llm.generate({ promptTokenIds: a }, params);
    const [hit] = await llm.generate({ promptTokenIds: b }, params);
    expect(hit.numCachedTokens).toBe(48);
    const after = llm.engine.stats;
    expect(after.prefixCacheHits - before.prefixCacheHits).toBeGreaterThanOrEqual(48);
    const cold = await loadLLM(modelDir('tinystories-656K'), { enablePrefixCaching: false, asyncScheduling });
    const [ref] = await cold.generate({ promptTokenIds: b }, params);
    expect(ref.numCachedTokens).toBe(0);
    expect(hit.outputs[0].tokenIds).toEqual(ref.outputs[0].tokenIds);
    await cold.dispose();
  });

  it('preempts under a tiny KV pool and still gives identical outputs', async () => {
    const tiny = await loadLLM(modelDir('tinystories-656K'), { numGpuBlocksOverride: 10, blockSize: 16, maxModelLen: 96, maxNumSeqs: 8, asyncScheduling });
    const params = new SamplingParams({ temperature: 0, maxTokens: 40, ignoreEos: true });
    const prompts = Array.from({ length: 8 }, (_, i) => ({ promptTokenIds: promptOf(10 + 3 * i, 200 + i) }));
    const outs = await tiny.generate(prompts, params);
    expect(tiny.engine.stats.numPreemptions).toBeGreaterThan(0);
    const ref = await llm.generate(prompts, params);
    expect(outs.map((o) => o.outputs[0].tokenIds)).toEqual(ref.map((o) => o.outputs[0].tokenIds));
    expect(kvOf(tiny).numFreeBlocks).toBe(10);
    await tiny.dispose();
  });

  it('reports metrics: tokens in and out, time to first token, inter-token latency', async () => {
    const m0 = llm.engine.metrics.snapshot();
    const [out] = await llm.generate({ promptTokenIds: promptOf(30, 9) }, new SamplingParams({ temperature: 0, maxTokens: 10, ignoreEos: true }));
    const m1 = llm.engine.metrics.snapshot();
    expect(m1.promptTokens - m0.promptTokens).toBe(30);
    expect(m1.generationTokens - m0.generationTokens).toBe(10);
    expect(m1.requestsFinished.stop + m1.requestsFinished.length - m0.requestsFinished.stop - m0.requestsFinished.length).toBe(1);
    expect(m1.timeToFirstToken.count - m0.timeToFirstToken.count).toBe(1);
    expect(m1.timeToFirstToken.sum).toBeGreaterThan(m0.timeToFirstToken.sum);
    expect(m1.interTokenLatency.count - m0.interTokenLatency.count).toBe(9);
    expect(m1.e2eLatency.count - m0.e2eLatency.count).toBe(1);
    expect(m1.requestPromptTokens.count - m0.requestPromptTokens.count).toBe(1);
    expect(m1.requestPromptTokens.sum - m0.requestPromptTokens.sum).toBe(30);
    expect(m1.requestGenerationTokens.sum - m0.requestGenerationTokens.sum).toBe(10);
    expect(out.outputs[0].tokenIds).toHaveLength(10);
    const s = llm.engine.stats;
    expect(s.numRunning + s.numWaiting).toBe(0);
    expect(s.kvCacheUsage).toBe(0);
  });
});

describe('warm-up and step graphs', () => {
  it('builds at load every kernel that steps of any size use, and replays forwards from step graphs: the tokens of a lazy, eager engine', async () => {
    // Greedy requests (argmax on the GPU; sampling's top-K kernels are left to first use), arriving at once: steps
    // of 16 decode tokens down to 1 as they end, prompt chunks from 3 to the whole 256-token budget.
    const run = async (llm: LLM) => {
      const lens = [3, 250, 17, 64, 5, 129, 33, 9, 1, 90, 200, 2, 48, 7, 120, 31];
      const reqs = lens.map((n, i) => ({ promptTokenIds: promptOf(n, 700 + i) }));
      const params = lens.map((_, i) => new SamplingParams({ temperature: 0, maxTokens: 2 + 3 * i, ignoreEos: true }));
      return (await llm.generate(reqs, params)).map((o) => o.outputs[0].tokenIds);
    };
    const warm = await loadLLM(modelDir('tinystories-656K'), { maxNumSeqs: 16, maxNumBatchedTokens: 256, warmup: true });
    const pipelines = gpuRunnerOf(warm.engine).ctx.pipelines;
    const built = pipelines.pipelinesBuilt;
    expect(built).toBeGreaterThan(5);
    const a = await run(warm);
    expect(pipelines.pipelinesBuilt).toBe(built);
    // Steps of a shape seen before replayed its captured forward.
    const { replayed, captured } = gpuRunnerOf(warm.engine).graphStats;
    expect(captured).toBeGreaterThan(0);
    expect(replayed).toBeGreaterThan(captured);
    // Forgotten graphs (clearGraphs, after a tuning change) are captured again, with the same results.
    gpuRunnerOf(warm.engine).clearGraphs();
    expect(await run(warm)).toEqual(a);
    expect(gpuRunnerOf(warm.engine).graphStats.captured).toBeGreaterThan(captured);
    await warm.dispose();
    // Without either, the same run compiles as it goes, records every forward, and gives the same tokens.
    const lazy = await loadLLM(modelDir('tinystories-656K'), { maxNumSeqs: 16, maxNumBatchedTokens: 256, warmup: false, enforceEager: true });
    expect(gpuRunnerOf(lazy.engine).ctx.pipelines.pipelinesBuilt).toBe(0);
    const b = await run(lazy);
    expect(gpuRunnerOf(lazy.engine).ctx.pipelines.pipelinesBuilt).toBeGreaterThan(0);
    expect(gpuRunnerOf(lazy.engine).graphStats).toEqual({ replayed: 0, captured: 0 });
    expect(b).toEqual(a);
    await lazy.dispose();
  });
});

describe('tiled prompt attention', () => {
  it('runs prompt-sized steps on the tiled kernel, giving the tokens of the per-token kernels', async () => {
    // No prefix caching across the two runs: the second must compute every prompt again.
    const llm = await loadLLM(modelDir('tinystories-656K'), { maxNumSeqs: 16, maxNumBatchedTokens: 256, enablePrefixCaching: false });
    const { ctx } = gpuRunnerOf(llm.engine);
    const keys = new Set<string>();
    const kernel = ctx.pipelines.kernel.bind(ctx.pipelines);
    ctx.pipelines.kernel = (key, make) => (keys.add(key.split('.').slice(0, 2).join('.')), kernel(key, make));
    // Prompts of 1 to 2 chunks (a chunk's queries after keys of earlier steps), with decodes joining their steps.
    const lens = [300, 129, 140, 5, 250, 60];
    const reqs = lens.map((n, i) => ({ promptTokenIds: promptOf(n, i) }));
    const params = new SamplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true });
    const tiled = (await llm.generate(reqs, params)).map((o) => o.outputs[0].tokenIds);
    expect(keys).toContain('paged_attention.tiled');
    ctx.tuning = { ...ctx.tuning, attentionTiledTokens: 0 };
    gpuRunnerOf(llm.engine).clearGraphs();
    keys.clear();
    const perToken = (await llm.generate(reqs, params)).map((o) => o.outputs[0].tokenIds);
    expect(keys).not.toContain('paged_attention.tiled');
    expect(tiled).toEqual(perToken);
    await llm.dispose();
  });
});

