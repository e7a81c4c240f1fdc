/**
 * A bounded load test on loopback: 64 concurrent streaming chat clients (greedy, through the `openai` client) beside
 * 8 clients that disconnect mid-stream. Every finished client gets exactly what its request gives when run alone;
 * the disconnected ones give their KV blocks back; /metrics counts the run. Prints p50/p99 time to first token and
 * aggregate tokens/s (not asserted: the machine is shared).
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import { modelDir } from './helpers/paths.js';
import { serveForTests } from './helpers/server.js';

const TEMPLATE = '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}';
const MODEL = 'tiny';
const CLIENTS = 64;
const ABORTING = 8;
const MAX_TOKENS = 32;
// A shared opening longer than a KV block, so that requests reuse each other's cached blocks.
const OPENING = 'Once upon a time, in a small town near a big green forest, there lived many happy animals and kind children. ';
const STARTS = [
  'There was a little girl named',
  'The dog saw a big red ball in the park and',
  'One day, Tom went to the beach with his mom. He',
  'Lily loved to paint. Every morning she',
  'There was a small bird who could not fly. The bird',
  'Ben and Sue found a box under the tree.',
  'The sun was hot and the cat wanted to',
  'Mom baked a cake for the party, but',
];

const metricValue = (text: string, name: string, labels = ''): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
};
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

describe('server under load (tinystories-656K)', () => {
  const served = serveForTests(
    modelDir('tinystories-656K'),
    { servedModelName: MODEL, chatTemplate: TEMPLATE },
    { llm: { maxNumSeqs: 64, kvCacheMemoryBytes: 32 << 20 }, client: { timeout: 300_000 } },
  );

  it(`serves ${CLIENTS} streaming chat clients beside ${ABORTING} that disconnect`, async () => {
    // What each prompt gives alone (greedy), from the ids the template renders.
    const expected: string[] = [];
    for (const start of STARTS) {
      const ids = served.llm.engine.tokenizer.encode(`<|start_story|>${OPENING}${start}`, { addSpecialTokens: false });
      const [out] = await served.llm.generate({ promptTokenIds: ids }, new SamplingParams({ temperature: 0, maxTokens: MAX_TOKENS }));
      expected.push(out.outputs[0].text);
    }
    const freeBefore = served.llm.engine.stats.kvCacheUsage;
    expect(freeBefore).toBe(0);
    const metricsBefore = await (await fetch(`${served.server.url}/metrics`)).text();

    const t0 = performance.now();
    const finishing = Array.from({ length: CLIENTS }, async (_, i) => {
      const start = performance.now();
      const stream = await served.client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: OPENING + STARTS[i % STARTS.length] }],
        max_tokens: MAX_TOKENS,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let ttft = NaN;
      let tokens = 0;
      let role = '';
      for await (const chunk of stream) {
        const d = chunk.choices[0]?.delta;
        if (d?.role) role = d.role;
        if (d?.content && Number.isNaN(ttft)) ttft = performance.now() - start;
        text += d?.content ?? '';
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
      return { i, text, ttft, tokens, role };
    });
    const aborting = Array.from({ length: ABORTING }, async (_, i) => {
      const controller = new AbortController();
      const stream = await served.client.chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content: OPENING + STARTS[i % STARTS.length] }], max_tokens: 400, temperature: 0, stream: true, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming,
        { signal: controller.signal },
      );
      let contentChunks = 0;
      try {
        for await (const chunk of stream) if (chunk.choices[0]?.delta.content && ++contentChunks === 2) controller.abort();
      } catch {
        // the client ends the iteration or throws its abort error
      }
      return contentChunks;
    });
    const [results, aborted] = await Promise.all([Promise.all(finishing), Promise.all(aborting)]);
    const seconds = (performance.now() - t0) / 1000;

    for (const r of results) {
      expect(r.role).toBe('assistant');
      expect(r.text, `client ${r.i}`).toBe(expected[r.i % STARTS.length]);
    }
    expect(aborted.every((n) => n === 2)).toBe(true);

    // Aborted requests are freed at the engine's next step: every KV block comes back.
    const end = Date.now() + 10_000;
    while (served.llm.engine.stats.numRunning + served.llm.engine.stats.numWaiting > 0 || served.llm.engine.stats.kvCacheUsage > 0) {
      if (Date.now() > end) throw new Error(`blocks not freed: ${JSON.stringify(served.llm.engine.stats)}`);
      await new Promise((r) => setTimeout(r, 20));
    }

    const m = await (await fetch(`${served.server.url}/metrics`)).text();
    const delta = (name: string, labels = '') => metricValue(m, name, labels) - metricValue(metricsBefore, name, labels);
    const tokens = results.reduce((n, r) => n + r.tokens, 0);
    expect(delta('vllm:request_success_total', 'finished_reason="stop"') + delta('vllm:request_success_total', 'finished_reason="length"')).toBe(CLIENTS);
    expect(delta('vllm:request_success_total', 'finished_reason="abort"')).toBe(ABORTING);
    expect(delta('vllm:time_to_first_token_seconds_count')).toBe(CLIENTS + ABORTING);
    expect(delta('vllm:generation_tokens_total')).toBeGreaterThanOrEqual(tokens + 2 * ABORTING);
    expect(delta('vllm:prefix_cache_hits_total')).toBeGreaterThan(0);
    expect(metricValue(m, 'vllm:kv_cache_usage_perc')).toBe(0);
    expect(metricValue(m, 'vllm:num_requests_running')).toBe(0);

    const ttfts = results.map((r) => r.ttft);
    console.log(
      `[server load] ${CLIENTS} streaming chat clients + ${ABORTING} disconnecting, ${MAX_TOKENS} tokens each: ` +
        `TTFT p50 ${quantile(ttfts, 0.5).toFixed(0)} ms, p99 ${quantile(ttfts, 0.99).toFixed(0)} ms; ` +
        `${tokens} tokens in ${seconds.toFixed(2)} s = ${(tokens / seconds).toFixed(0)} tokens/s aggregate`,
    );
  });
});
