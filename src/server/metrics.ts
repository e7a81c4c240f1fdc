/**
 * Prometheus metrics with vLLM's names (vllm/v1/metrics/loggers.py), in the text exposition format 0.0.4.
 * Gauges and prefix-cache counters are read from the scheduler at scrape time; request timings and token counts are
 * observed here, in the server, from the streams it consumes: time to first token from arrival to the first output
 * carrying tokens, inter-token latency between later outputs, end-to-end latency at the finish.
 *
 * @example
 * const metrics = new ServerMetrics('my-model', () => engine.stats);
 * const t = metrics.track();           // on arrival
 * t.onOutput(promptLen, newTokens);    // per streamed output
 * t.finish('stop');
 * const text = metrics.render();       // GET /metrics
 */
import type { SchedulerStats } from '../engine/scheduler-output.js';

// vLLM's buckets.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

/** vLLM's `build_1_2_5_buckets`: 1, 2, 5, 10, 20, 50, ... up to `max`. */
function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let exp = 1; ; exp *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * exp > max) return out;
      out.push(m * exp);
    }
  }
}

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: number[]) {
    this.counts = new Array(bounds.length).fill(0);
  }
  observe(x: number): void {
    this.sum += x;
    this.count++;
    // Cumulative buckets: every bound at or above x counts it.
    for (let i = this.bounds.length - 1; i >= 0 && x <= this.bounds[i]; i--) this.counts[i]++;
  }
}

/** One request's timeline, from arrival to finish. */
export class RequestTracker {
  private readonly arrival = performance.now();
  private last = 0;
  private promptTokens = 0;
  private generated = 0;
  private done = false;

  constructor(private readonly m: ServerMetrics) {}

  /** An output arrived carrying `newTokens` generated tokens (summed over the request's choices). */
  onOutput(promptTokens: number, newTokens: number): void {
    if (newTokens === 0 || this.done) return;
    const now = performance.now();
    if (this.generated === 0) {
      this.promptTokens = promptTokens;
      this.m.promptTokens += promptTokens;
      this.m.ttft.observe((now - this.arrival) / 1000);
    } else {
      this.m.itl.observe((now - this.last) / 1000);
    }
    this.last = now;
    this.generated += newTokens;
    this.m.generationTokens += newTokens;
  }

  /** The request ended: 'stop', 'length' or 'abort' (a client gone, an engine error). */
  finish(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.m.success.set(reason, (this.m.success.get(reason) ?? 0) + 1);
    this.m.e2e.observe((performance.now() - this.arrival) / 1000);
    if (this.generated > 0) {
      this.m.requestPromptTokens.observe(this.promptTokens);
      this.m.requestGenerationTokens.observe(this.generated);
    }
  }
}

export class ServerMetrics {
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly itl = new Histogram(ITL_BUCKETS);
  readonly e2e = new Histogram(E2E_BUCKETS);
  readonly requestPromptTokens: Histogram;
  readonly requestGenerationTokens: Histogram;
  promptTokens = 0;
  generationTokens = 0;
  /** finished_reason -> count. */
  readonly success = new Map<string, number>();

  constructor(
    readonly modelName: string,
    private readonly stats: () => SchedulerStats,
    maxModelLen: number,
  ) {
    this.requestPromptTokens = new Histogram(buckets125(maxModelLen));
    this.requestGenerationTokens = new Histogram(buckets125(maxModelLen));
  }

  /** Starts timing a request (call on arrival). */
  track(): RequestTracker {
    return new RequestTracker(this);
  }

  /** The Prometheus text. */
  render(): string {
    const s = this.stats();
    const label = `model_name="${this.modelName.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const sample = (name: string, value: number, extra = '') => lines.push(`${name}{${label}${extra}} ${num(value)}`);
    const scalar = (name: string, type: 'gauge' | 'counter', help: string, value: number) => {
      family(name, type, help);
      sample(name, value);
    };
    const histogram = (name: string, help: string, h: Histogram) => {
      family(name, 'histogram', help);
      h.bounds.forEach((b, i) => sample(`${name}_bucket`, h.counts[i], `,le="${num(b)}"`));
      sample(`${name}_bucket`, h.count, ',le="+Inf"');
      sample(`${name}_sum`, h.sum);
      sample(`${name}_count`, h.count);
    };

    scalar('vllm:num_requests_running', 'gauge', 'Number of requests in model execution batches.', s.numRunning);
    scalar('vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.', s.numWaiting);
    scalar('vllm:kv_cache_usage_perc', 'gauge', 'KV-cache usage. 1 means 100 percent usage.', s.kvCacheUsage);
    scalar('vllm:prefix_cache_queries_total', 'counter', 'Prefix cache queries, in terms of number of queried tokens.', s.prefixCacheQueries);
    scalar('vllm:prefix_cache_hits_total', 'counter', 'Prefix cache hits, in terms of number of cached tokens.', s.prefixCacheHits);
    scalar('vllm:num_preemptions_total', 'counter', 'Cumulative number of preemption from the engine.', s.numPreemptions);
    scalar('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', this.promptTokens);
    scalar('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.', this.generationTokens);
    family('vllm:request_success_total', 'counter', 'Count of successfully processed requests.');
    for (const reason of ['stop', 'length', 'abort']) sample('vllm:request_success_total', this.success.get(reason) ?? 0, `,finished_reason="${reason}"`);
    histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', this.ttft);
    histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', this.itl);
    histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', this.e2e);
    histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', this.requestPromptTokens);
    histogram('vllm:request_generation_tokens', 'Number of generation tokens processed.', this.requestGenerationTokens);
    return `${lines.join('\n')}\n`;
  }
}

/** Prometheus numbers: floats as JavaScript prints them, infinities as +Inf/-Inf. */
function num(x: number): string {
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return Number.isInteger(x) ? `${x}.0` : String(x);
}
