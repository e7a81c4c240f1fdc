/**
 * Engine metrics, as vLLM's: token counters, finished requests by reason, and histograms of time to first token,
 * inter-token latency and end-to-end latency (seconds), and of prompt and generated tokens per request (vLLM's
 * bucket bounds), ready for a Prometheus exporter (src/server/metrics.ts renders them).
 */

/**
 * A histogram: `counts[i]` observations in (buckets[i - 1], buckets[i]], the last slot those above every bound
 * (Prometheus's cumulative buckets are running sums of these; src/server/metrics.ts adds them up).
 */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array(buckets.length + 1).fill(0);
  }

  observe(v: number): void {
    let i = 0;
    while (i < this.buckets.length && v > this.buckets[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }

  /** The value below which a fraction `q` of observations fall, read off the bucket bounds. */
  quantile(q: number): number {
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= q * this.count) return i < this.buckets.length ? this.buckets[i] : Infinity;
    }
    return Infinity;
  }
}

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

/** vLLM's iteration_tokens_total buckets: tokens in one engine step. */
const ITERATION_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
/** vLLM's request_params_n buckets. */
const N_BUCKETS = [1, 2, 5, 10, 20];

/**
 * One request's timestamps, as vLLM's RequestStateStats (RequestOutput.metrics): `arrivalTime` is wall-clock
 * seconds since the epoch; the `*Ts` fields are monotonic seconds (performance.now() / 1000), comparable among
 * themselves only. Null until the event happens.
 */
export interface RequestStateStats {
  arrivalTime: number;
  /** When the request entered the scheduler's queue. */
  queuedTs: number;
  /** When a step first computed any of its tokens. */
  scheduledTs: number | null;
  firstTokenTs: number | null;
  lastTokenTs: number | null;
  /** Seconds from arrival to the first token. */
  firstTokenLatency: number | null;
  /** Tokens generated so far, over all its sequences. */
  numGenerationTokens: number;
}

export function newRequestStateStats(): RequestStateStats {
  return { arrivalTime: Date.now() / 1000, queuedTs: performance.now() / 1000, scheduledTs: null, firstTokenTs: null, lastTokenTs: null, firstTokenLatency: null, numGenerationTokens: 0 };
}

export interface MetricsSnapshot {
  promptTokens: number;
  generationTokens: number;
  requestsFinished: Record<'stop' | 'length' | 'abort' | 'repetition', number>;
  timeToFirstToken: { count: number; sum: number };
  interTokenLatency: { count: number; sum: number };
  e2eLatency: { count: number; sum: number };
  requestPromptTokens: { count: number; sum: number };
  requestGenerationTokens: { count: number; sum: number };
}

export class EngineMetrics {
  promptTokens = 0;
  generationTokens = 0;
  readonly requestsFinished = { stop: 0, length: 0, abort: 0, repetition: 0 };
  readonly timeToFirstToken = new Histogram(TTFT_BUCKETS);
  readonly interTokenLatency = new Histogram(ITL_BUCKETS);
  readonly e2eLatency = new Histogram(E2E_BUCKETS);
  /** Per finished request that generated tokens: its prompt tokens, and the tokens generated for it. */
  readonly requestPromptTokens: Histogram;
  readonly requestGenerationTokens: Histogram;
  /** Tokens computed per engine step (prompt and generated). */
  readonly iterationTokens = new Histogram(ITERATION_BUCKETS);
  /** Per request: its `n`, its `maxTokens`, and the most tokens one of its sequences generated. */
  readonly requestParamsN = new Histogram(N_BUCKETS);
  readonly requestParamsMaxTokens: Histogram;
  readonly requestMaxNumGenerationTokens: Histogram;
  /** Per finished request (seconds): waiting, prefill (scheduled to first token), decode, running (both), TPOT. */
  readonly requestQueueTime = new Histogram(E2E_BUCKETS);
  readonly requestPrefillTime = new Histogram(E2E_BUCKETS);
  readonly requestDecodeTime = new Histogram(E2E_BUCKETS);
  readonly requestInferenceTime = new Histogram(E2E_BUCKETS);
  readonly requestTimePerOutputToken = new Histogram(ITL_BUCKETS);

  /** `maxModelLen` bounds the per-request token histograms (1, 2, 5, 10, ... up to it). */
  constructor(maxModelLen = 1 << 20) {
    this.requestPromptTokens = new Histogram(buckets125(maxModelLen));
    this.requestGenerationTokens = new Histogram(buckets125(maxModelLen));
    this.requestParamsMaxTokens = new Histogram(buckets125(maxModelLen));
    this.requestMaxNumGenerationTokens = new Histogram(buckets125(maxModelLen));
  }

  /** A finished request's phase times, from its stats (vLLM's FinishedRequestStats); none if never scheduled. */
  observeFinished(stats: RequestStateStats, maxTokens: number | null, maxSeqTokens: number): void {
    if (maxTokens !== null) this.requestParamsMaxTokens.observe(maxTokens);
    if (stats.scheduledTs === null) return;
    this.requestMaxNumGenerationTokens.observe(maxSeqTokens);
    const last = stats.lastTokenTs ?? stats.scheduledTs;
    const first = stats.firstTokenTs ?? last;
    this.requestQueueTime.observe(stats.scheduledTs - stats.queuedTs);
    this.requestPrefillTime.observe(first - stats.scheduledTs);
    this.requestDecodeTime.observe(last - first);
    this.requestInferenceTime.observe(last - stats.scheduledTs);
    if (stats.numGenerationTokens > 1) this.requestTimePerOutputToken.observe((last - first) / (stats.numGenerationTokens - 1));
  }

  /** Counters and histogram totals at this moment (a copy). */
  snapshot(): MetricsSnapshot {
    const h = (x: Histogram) => ({ count: x.count, sum: x.sum });
    return {
      promptTokens: this.promptTokens,
      generationTokens: this.generationTokens,
      requestsFinished: { ...this.requestsFinished },
      timeToFirstToken: h(this.timeToFirstToken),
      interTokenLatency: h(this.interTokenLatency),
      e2eLatency: h(this.e2eLatency),
      requestPromptTokens: h(this.requestPromptTokens),
      requestGenerationTokens: h(this.requestGenerationTokens),
    };
  }
}
