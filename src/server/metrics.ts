/**
 * Prometheus metrics with vLLM's names (vllm/v1/metrics/loggers.py), in the text exposition format 0.0.4, read at
 * scrape time from the engine: gauges and prefix-cache counters from its scheduler, token counters and the
 * latency and per-request token histograms from its EngineMetrics (the same numbers an offline LLM user reads).
 *
 * @example
 * const metrics = new ServerMetrics('my-model', llm.engine);
 * const text = metrics.render();       // GET /metrics
 */
import type { EngineMetrics, Histogram } from '../engine/metrics.js';
import type { SchedulerStats } from '../engine/scheduler-output.js';

/** What the exporter reads: an LLMEngine. */
export interface MetricsSource {
  readonly stats: SchedulerStats;
  readonly metrics: EngineMetrics;
  /** vllm:cache_config_info's labels (absent: the family is left out). */
  readonly cacheConfigInfo?: Record<string, string>;
}

export class ServerMetrics {
  constructor(
    readonly modelName: string,
    private readonly source: MetricsSource,
  ) {}

  /** The Prometheus text. */
  render(): string {
    const s = this.source.stats;
    const m = this.source.metrics;
    const label = `model_name="${escapeLabel(this.modelName)}"`;
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const sample = (name: string, value: number, extra = '') => lines.push(`${name}{${label}${extra}} ${num(value)}`);
    const scalar = (name: string, type: 'gauge' | 'counter', help: string, value: number) => {
      family(name, type, help);
      sample(name, value);
    };
    const histogram = (name: string, help: string, h: Histogram) => {
      family(name, 'histogram', help);
      // Cumulative buckets: each bound counts every observation at or below it.
      let seen = 0;
      h.buckets.forEach((b, i) => sample(`${name}_bucket`, (seen += h.counts[i]), `,le="${num(b)}"`));
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
    scalar('vllm:prompt_tokens_total', 'counter', 'Number of prefill tokens processed.', m.promptTokens);
    scalar('vllm:generation_tokens_total', 'counter', 'Number of generation tokens processed.', m.generationTokens);
    family('vllm:request_success_total', 'counter', 'Count of successfully processed requests.');
    for (const reason of ['stop', 'length', 'abort', 'repetition'] as const) sample('vllm:request_success_total', m.requestsFinished[reason], `,finished_reason="${reason}"`);
    histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', m.timeToFirstToken);
    histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', m.interTokenLatency);
    histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', m.e2eLatency);
    histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', m.requestPromptTokens);
    histogram('vllm:request_generation_tokens', 'Number of generation tokens processed.', m.requestGenerationTokens);
    histogram('vllm:iteration_tokens_total', 'Histogram of number of tokens per engine_step.', m.iterationTokens);
    histogram('vllm:request_max_num_generation_tokens', 'Histogram of maximum number of requested generation tokens.', m.requestMaxNumGenerationTokens);
    histogram('vllm:request_params_n', 'Histogram of the n request parameter.', m.requestParamsN);
    histogram('vllm:request_params_max_tokens', 'Histogram of the max_tokens request parameter.', m.requestParamsMaxTokens);
    histogram('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', m.requestQueueTime);
    histogram('vllm:request_inference_time_seconds', 'Histogram of time spent in RUNNING phase for request.', m.requestInferenceTime);
    histogram('vllm:request_prefill_time_seconds', 'Histogram of time spent in PREFILL phase for request.', m.requestPrefillTime);
    histogram('vllm:request_decode_time_seconds', 'Histogram of time spent in DECODE phase for request.', m.requestDecodeTime);
    histogram('vllm:request_time_per_output_token_seconds', 'Histogram of time_per_output_token_seconds per request.', m.requestTimePerOutputToken);
    const info = this.source.cacheConfigInfo;
    if (info) {
      // An info metric: a gauge fixed at 1 whose labels carry the configuration.
      family('vllm:cache_config_info', 'gauge', 'Information of the LLMEngine CacheConfig');
      const labels = Object.entries(info).map(([k, v]) => `,${k}="${escapeLabel(v)}"`).join('');
      sample('vllm:cache_config_info', 1, labels);
    }
    const spec = s.specDecoding;
    if (spec) {
      // vLLM's SpecDecodingProm names (vllm/v1/spec_decode/metrics.py).
      scalar('vllm:spec_decode_num_drafts_total', 'counter', 'Number of spec decoding drafts.', spec.numDrafts);
      scalar('vllm:spec_decode_num_draft_tokens_total', 'counter', 'Number of draft tokens.', spec.numDraftTokens);
      scalar('vllm:spec_decode_num_accepted_tokens_total', 'counter', 'Number of accepted tokens.', spec.numAcceptedTokens);
      family('vllm:spec_decode_num_accepted_tokens_per_pos_total', 'counter', 'Accepted tokens per draft position.');
      spec.numAcceptedTokensPerPos.forEach((c, j) => sample('vllm:spec_decode_num_accepted_tokens_per_pos_total', c, `,position="${j}"`));
    }
    return `${lines.join('\n')}\n`;
  }
}

/** A Prometheus label value: backslash, quote and newline escaped. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Prometheus numbers: floats as JavaScript prints them, infinities as +Inf/-Inf. */
function num(x: number): string {
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return Number.isInteger(x) ? `${x}.0` : String(x);
}
