/**
 * `webgpu-llm bench serve`: vLLM's `vllm bench serve` against any OpenAI-compatible server (this one, vLLM,
 * llama.cpp's llama-server), so the same numbers compare across servers. Requests stream
 * (`stream_options.include_usage` for the token counts); arrivals follow a Poisson process at --request-rate
 * (seeded), at most --max-concurrency in flight. Per request:
 *   TTFT  time to the first streamed text;  ITL  time between streamed chunks;
 *   TPOT  (end-to-end - TTFT) / (output tokens - 1);  E2EL  end-to-end latency.
 * Prompts are --input-len words drawn from a fixed list (about one token each with BPE vocabularies; the token
 * counts printed are the server's own, from `usage`).
 */
import { parseCommand, UsageError, type CommandSpec } from './args.js';
import { percentile, table } from './table.js';

export const BENCH_SERVE: CommandSpec = {
  name: 'bench serve',
  usage: '[--base-url URL] [--model NAME] [--num-prompts N] [--request-rate R] [flags]',
  summary:
    'Load test of an OpenAI-compatible server, as `vllm bench serve`: --num-prompts streaming requests of about --input-len prompt tokens and --output-len generated tokens, arriving at --request-rate per second (Poisson; inf: all at once), at most --max-concurrency at a time. Prints throughput and the mean, median and P99 of TTFT (time to first token), TPOT (time per output token after the first), ITL (inter-token latency) and E2EL (end-to-end latency). Works against this package\'s `serve`, vLLM and llama.cpp\'s llama-server.',
  flags: [
    { name: 'base-url', kind: 'string', metavar: 'URL', help: 'the server, without /v1', defaultText: 'http://HOST:PORT' },
    { name: 'host', kind: 'string', metavar: 'HOST', help: 'the server host when --base-url is not given', defaultText: '127.0.0.1' },
    { name: 'port', kind: 'int', min: 1, max: 65535, help: 'the server port when --base-url is not given', defaultText: '8000' },
    { name: 'endpoint', kind: 'choice', choices: ['/v1/completions', '/v1/chat/completions'], help: 'the API to call', defaultText: '/v1/completions' },
    { name: 'model', kind: 'string', metavar: 'NAME', help: "the 'model' field of each request", defaultText: 'the first of /v1/models' },
    { name: 'api-key', kind: 'string', metavar: 'KEY', help: "sent as 'Authorization: Bearer KEY'", defaultText: '$OPENAI_API_KEY' },
    { name: 'num-prompts', kind: 'int', min: 1, help: 'requests to send', defaultText: '32' },
    { name: 'input-len', kind: 'int', min: 1, help: 'prompt length in words (about one token each)', defaultText: '32' },
    { name: 'output-len', kind: 'int', min: 1, help: 'max_tokens of each request', defaultText: '64' },
    { name: 'ignore-eos', kind: 'boolean', help: "send ignore_eos (vLLM's and this server's extension) so every request generates --output-len tokens" },
    { name: 'temperature', kind: 'number', min: 0, metavar: 'T', help: 'sampling temperature of the requests', defaultText: '0' },
    { name: 'request-rate', kind: 'string', metavar: 'R', help: "requests per second ('inf': all at once)", defaultText: 'inf' },
    { name: 'max-concurrency', kind: 'int', min: 1, help: 'most requests in flight', defaultText: 'unlimited' },
    { name: 'seed', kind: 'int', min: 0, help: 'seed of the prompts and arrival times', defaultText: '0' },
  ],
  examples: [
    'webgpu-llm bench serve --base-url http://127.0.0.1:8000 --num-prompts 100 --request-rate 4',
    'webgpu-llm bench serve --base-url http://127.0.0.1:8080 --model llama --ignore-eos   # llama.cpp llama-server',
  ],
};

const WORDS = 'the a little girl boy dog cat sun tree house day time went saw said happy big red ball park friend mom dad play run jump look toy bird fish water sky blue green food cake book'.split(' ');

/** One request's measurements. */
interface RequestResult {
  ok: boolean;
  error?: string;
  ttft: number;
  itl: number[];
  e2el: number;
  promptTokens: number;
  outputTokens: number;
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

async function oneRequest(url: string, headers: Record<string, string>, body: Record<string, unknown>, chat: boolean): Promise<RequestResult> {
  const r: RequestResult = { ok: false, ttft: 0, itl: [], e2el: 0, promptTokens: 0, outputTokens: 0 };
  const t0 = performance.now();
  try {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    if (!res.ok || !res.body) {
      r.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
      return r;
    }
    const decoder = new TextDecoder();
    let buf = '';
    let last = 0;
    let chunks = 0;
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(bytes, { stream: true });
      let cut: number;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
        for (const line of event.split(/\r?\n/)) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') continue;
          const msg = JSON.parse(data) as { choices?: { text?: string; delta?: { content?: string; reasoning_content?: string; reasoning?: string } }[]; usage?: typeof usage; error?: { message?: string } };
          if (msg.error) throw new Error(msg.error.message ?? JSON.stringify(msg.error));
          if (msg.usage) usage = msg.usage;
          const c = msg.choices?.[0];
          const text = chat ? (c?.delta?.content ?? c?.delta?.reasoning_content ?? c?.delta?.reasoning ?? '') : (c?.text ?? '');
          if (text === '') continue;
          const now = performance.now();
          if (chunks === 0) r.ttft = (now - t0) / 1000;
          else r.itl.push((now - last) / 1000);
          last = now;
          chunks++;
        }
      }
    }
    r.e2el = (performance.now() - t0) / 1000;
    r.outputTokens = usage?.completion_tokens ?? chunks;
    r.promptTokens = usage?.prompt_tokens ?? 0;
    r.ok = chunks > 0 || r.outputTokens > 0;
    if (!r.ok) r.error = 'no text was streamed';
  } catch (err) {
    r.error = err instanceof Error ? err.message : String(err);
  }
  return r;
}

export async function benchServeCommand(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(BENCH_SERVE, argv);
  const rateText = (v['request-rate'] as string | undefined) ?? 'inf';
  const rate = rateText === 'inf' ? Infinity : Number(rateText);
  if (!(rate > 0)) throw new UsageError(`--request-rate must be a positive number or 'inf', got '${rateText}'`);
  const base = ((v['base-url'] as string | undefined) ?? `http://${(v.host as string | undefined) ?? '127.0.0.1'}:${(v.port as number | undefined) ?? 8000}`).replace(/\/+$/, '').replace(/\/v1$/, '');
  if (!/^https?:\/\//.test(base)) throw new UsageError(`--base-url must be an http(s) URL, got '${base}'`);
  const endpoint = (v.endpoint as string | undefined) ?? '/v1/completions';
  const chat = endpoint.endsWith('/chat/completions');
  const key = (v['api-key'] as string | undefined) ?? process.env.OPENAI_API_KEY;
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) };
  let model = v.model as string | undefined;
  if (model === undefined) {
    const res = await fetch(`${base}/v1/models`, { headers }).catch((e: Error) => {
      throw new Error(`cannot reach ${base}/v1/models: ${e.message}`);
    });
    if (!res.ok) throw new Error(`${base}/v1/models answered ${res.status}; pass --model NAME`);
    model = ((await res.json()) as { data: { id: string }[] }).data[0]?.id;
    if (!model) throw new Error(`${base}/v1/models lists no model; pass --model NAME`);
  }
  const n = (v['num-prompts'] as number | undefined) ?? 32;
  const inputLen = (v['input-len'] as number | undefined) ?? 32;
  const outputLen = (v['output-len'] as number | undefined) ?? 64;
  const maxConcurrency = (v['max-concurrency'] as number | undefined) ?? Infinity;
  const random = rng((v.seed as number | undefined) ?? 0);
  const prompts = Array.from({ length: n }, () => Array.from({ length: inputLen }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' '));
  const bodyOf = (prompt: string): Record<string, unknown> => ({
    model,
    ...(chat ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
    max_tokens: outputLen,
    temperature: (v.temperature as number | undefined) ?? 0,
    stream: true,
    stream_options: { include_usage: true },
    ...(v['ignore-eos'] ? { ignore_eos: true } : {}),
  });
  const url = `${base}${endpoint}`;

  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const slot = async () => {
    while (inFlight >= maxConcurrency) await new Promise<void>((r) => waiting.push(r));
    inFlight++;
  };
  const release = () => {
    inFlight--;
    waiting.shift()?.();
  };
  process.stderr.write(`bench serve: ${n} requests to ${url} (model '${model}', request rate ${rateText}, max concurrency ${Number.isFinite(maxConcurrency) ? maxConcurrency : 'unlimited'})\n`);
  const t0 = performance.now();
  const pending: Promise<RequestResult>[] = [];
  for (const prompt of prompts) {
    if (Number.isFinite(rate) && pending.length > 0) await new Promise((r) => setTimeout(r, (-Math.log(1 - random()) / rate) * 1000));
    await slot();
    pending.push(oneRequest(url, headers, bodyOf(prompt), chat).finally(release));
  }
  const results = await Promise.all(pending);
  const duration = (performance.now() - t0) / 1000;
  const ok = results.filter((r) => r.ok);
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) process.stderr.write(`bench serve: ${failed.length} requests failed; the first: ${failed[0].error}\n`);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const input = sum(ok.map((r) => r.promptTokens));
  const output = sum(ok.map((r) => r.outputTokens));
  const ms = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b).map((x) => x * 1000);
    return { mean: s.length ? sum(s) / s.length : NaN, median: percentile(s, 50), p99: percentile(s, 99) };
  };
  const section = (title: string, short: string, xs: number[]): [string, string | number][] => {
    const m = ms(xs);
    return [[title, ''], [`Mean ${short} (ms)`, m.mean.toFixed(2)], [`Median ${short} (ms)`, m.median.toFixed(2)], [`P99 ${short} (ms)`, m.p99.toFixed(2)]];
  };
  process.stdout.write(
    table('Serving Benchmark Result', [
      ['Successful requests', ok.length],
      ['Failed requests', failed.length],
      ['Benchmark duration (s)', duration.toFixed(2)],
      ['Total input tokens', input],
      ['Total generated tokens', output],
      ['Request throughput (req/s)', (ok.length / duration).toFixed(2)],
      ['Output token throughput (tok/s)', (output / duration).toFixed(2)],
      ['Total Token throughput (tok/s)', ((input + output) / duration).toFixed(2)],
      ...section('Time to First Token', 'TTFT', ok.map((r) => r.ttft)),
      ...section('Time per Output Token (excl. 1st token)', 'TPOT', ok.filter((r) => r.outputTokens > 1).map((r) => (r.e2el - r.ttft) / (r.outputTokens - 1))),
      ...section('Inter-token Latency', 'ITL', ok.flatMap((r) => r.itl)),
      ...section('End-to-end Latency', 'E2EL', ok.map((r) => r.e2el)),
    ]),
  );
  if (ok.length === 0) throw new Error('every request failed');
}
