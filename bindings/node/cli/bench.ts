/**
 * `webgpu-llm bench latency|throughput|serve`, as vLLM's `vllm bench`:
 *   latency     one batch of --batch-size prompts of --input-len random tokens, --output-len tokens each (EOS
 *               ignored), timed end to end --num-iters times after --num-iters-warmup; prints the percentiles.
 *   throughput  --num-prompts such requests submitted at once; prints requests/s and tokens/s.
 *   serve       bench-serve.ts: a load generator against any OpenAI-compatible URL.
 * Prompts are random token ids drawn with a fixed seed (vLLM's random dataset), so runs compare.
 */
import { SamplingParams, type LLM } from '../index.js';
import { parseCommand, UsageError, type CommandSpec, type FlagSpec } from './args.js';
import { ENGINE_FLAGS, MODEL_FLAG } from './flags.js';
import { loadModel, makeLogger } from './load.js';
import { benchServeCommand, BENCH_SERVE } from './bench-serve.js';
import { percentile, table } from './table.js';

const SHAPE_FLAGS: FlagSpec[] = [
  { name: 'input-len', kind: 'int', min: 1, help: 'prompt length in tokens', defaultText: '32' },
  { name: 'output-len', kind: 'int', min: 1, help: 'tokens generated per request (EOS ignored)', defaultText: '128' },
];

export const BENCH_LATENCY: CommandSpec = {
  name: 'bench latency',
  usage: '[--model MODEL] [--input-len N] [--output-len N] [--batch-size N] [flags]',
  summary:
    "Latency of one batch, as `vllm bench latency`: --batch-size requests of --input-len random prompt tokens each generate --output-len tokens (EOS ignored); the batch is timed end to end --num-iters times after --num-iters-warmup untimed runs. Prints the mean and percentiles in seconds.",
  flags: [
    MODEL_FLAG,
    ...SHAPE_FLAGS,
    { name: 'batch-size', kind: 'int', min: 1, help: 'requests in the batch', defaultText: '8' },
    { name: 'num-iters-warmup', kind: 'int', min: 0, help: 'untimed runs first', defaultText: '3' },
    { name: 'num-iters', kind: 'int', min: 1, help: 'timed runs', defaultText: '10' },
    ...ENGINE_FLAGS,
  ],
  examples: ['webgpu-llm bench latency --model Qwen/Qwen2.5-0.5B-Instruct --input-len 128 --output-len 128 --batch-size 1'],
};

export const BENCH_THROUGHPUT: CommandSpec = {
  name: 'bench throughput',
  usage: '[--model MODEL] [--num-prompts N] [--input-len N] [--output-len N] [flags]',
  summary:
    'Offline throughput, as `vllm bench throughput`: --num-prompts requests of --input-len random prompt tokens and --output-len generated tokens (EOS ignored) are submitted at once and batched by the scheduler. Prints requests/s, total tokens/s and output tokens/s.',
  flags: [MODEL_FLAG, { name: 'num-prompts', kind: 'int', min: 1, help: 'requests', defaultText: '64' }, ...SHAPE_FLAGS, ...ENGINE_FLAGS],
  examples: ['webgpu-llm bench throughput --num-prompts 256 --input-len 64 --output-len 64 --max-num-seqs 128'],
};

export const BENCH_HELP = `usage: webgpu-llm bench latency|throughput|serve [flags]

Benchmarks, as vLLM's \`vllm bench\`:
  latency     time one batch end to end (this process loads the model)
  throughput  requests/s and tokens/s of many requests at once (this process loads the model)
  serve       TTFT, TPOT, ITL and throughput against any OpenAI-compatible server URL (this one, vLLM,
              llama.cpp's llama-server)

'webgpu-llm bench SUB --help' explains each one's flags.
`;

/** `count` prompts of `len` token ids drawn from the vocabulary (special tokens avoided) with a fixed seed. */
function randomPrompts(llm: LLM, count: number, len: number): { promptTokenIds: number[] }[] {
  const vocab = llm.engine.tokenizer.vocabSize;
  let s = 0x9e3779b9;
  const next = () => {
    // xorshift32: explicit state, so every run draws the same prompts.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const lo = Math.min(256, Math.floor(vocab / 2)); // skip the low ids, where tokenizers keep their special tokens
  return Array.from({ length: count }, () => ({ promptTokenIds: Array.from({ length: len }, () => lo + Math.floor(next() * (vocab - lo))) }));
}

function benchParams(outputLen: number): SamplingParams {
  return new SamplingParams({ temperature: 1, topP: 1, maxTokens: outputLen, ignoreEos: true, seed: 0 });
}

async function latency(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(BENCH_LATENCY, argv);
  const log = makeLogger(v);
  const inputLen = (v['input-len'] as number | undefined) ?? 32;
  const outputLen = (v['output-len'] as number | undefined) ?? 128;
  const batch = (v['batch-size'] as number | undefined) ?? 8;
  const warm = (v['num-iters-warmup'] as number | undefined) ?? 3;
  const iters = (v['num-iters'] as number | undefined) ?? 10;
  const llm = await loadModel(v, v.model as string | undefined, log);
  try {
    if (inputLen + outputLen > llm.engine.runner.limits.maxModelLen) throw new UsageError(`--input-len + --output-len (${inputLen + outputLen}) exceeds the max model len ${llm.engine.runner.limits.maxModelLen}`);
    const prompts = randomPrompts(llm, batch, inputLen);
    const params = benchParams(outputLen);
    for (let i = 0; i < warm; i++) await llm.generate(prompts, params);
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await llm.generate(prompts, params);
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const f = (x: number) => x.toFixed(4);
    process.stdout.write(
      table('Latency Benchmark Result', [
        ['Batch size', batch],
        ['Input length (tokens)', inputLen],
        ['Output length (tokens)', outputLen],
        ['Iterations (after warm-up)', `${iters} (${warm})`],
        ['Avg latency (s)', f(mean)],
        ...[10, 25, 50, 75, 90, 99].map((p): [string, string] => [`P${p} latency (s)`, f(percentile(times, p))]),
        ['Output tokens/s (mean)', ((batch * outputLen) / mean).toFixed(2)],
      ]),
    );
  } finally {
    await llm.dispose();
  }
}

async function throughput(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(BENCH_THROUGHPUT, argv);
  const log = makeLogger(v);
  const n = (v['num-prompts'] as number | undefined) ?? 64;
  const inputLen = (v['input-len'] as number | undefined) ?? 32;
  const outputLen = (v['output-len'] as number | undefined) ?? 128;
  const llm = await loadModel(v, v.model as string | undefined, log);
  try {
    if (inputLen + outputLen > llm.engine.runner.limits.maxModelLen) throw new UsageError(`--input-len + --output-len (${inputLen + outputLen}) exceeds the max model len ${llm.engine.runner.limits.maxModelLen}`);
    const prompts = randomPrompts(llm, n, inputLen);
    const t0 = performance.now();
    const outs = await llm.generate(prompts, benchParams(outputLen));
    const s = (performance.now() - t0) / 1000;
    const generated = outs.reduce((a, o) => a + o.outputs[0].tokenIds.length, 0);
    const promptTokens = n * inputLen;
    process.stdout.write(
      table('Throughput Benchmark Result', [
        ['Requests', n],
        ['Elapsed time (s)', s.toFixed(2)],
        ['Total prompt tokens', promptTokens],
        ['Total generated tokens', generated],
        ['Request throughput (req/s)', (n / s).toFixed(2)],
        ['Output token throughput (tok/s)', (generated / s).toFixed(2)],
        ['Total token throughput (tok/s)', ((promptTokens + generated) / s).toFixed(2)],
      ]),
    );
  } finally {
    await llm.dispose();
  }
}

export const BENCH_SUBCOMMANDS = { latency: BENCH_LATENCY, throughput: BENCH_THROUGHPUT, serve: BENCH_SERVE };

export async function benchCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'latency') return latency(rest);
  if (sub === 'throughput') return throughput(rest);
  if (sub === 'serve') return benchServeCommand(rest);
  if (sub === undefined || sub === '--help' || sub === '-h') {
    if (sub === undefined) throw new UsageError(`bench needs latency, throughput or serve\n${BENCH_HELP}`);
    process.stdout.write(BENCH_HELP);
    return;
  }
  throw new UsageError(`unknown bench '${sub}' (latency, throughput or serve)`);
}
