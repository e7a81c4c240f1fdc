#!/usr/bin/env node
/**
 * The `webgpu-llm` command.
 *
 *   webgpu-llm generate "Once upon a time" [--model DIR] [--max-tokens N] [--temperature T] [--seed S]
 *
 * Streams the completion to stdout; diagnostics go to stderr.
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams, type SamplingParamsInit } from './index.js';

const USAGE = `usage: webgpu-llm generate PROMPT [--model DIR] [--max-tokens N] [--temperature T] [--seed S]
                    [--top-p P] [--top-k K] [--ignore-eos] [--dtype auto|float32|float16]

  PROMPT          text to continue
  --model DIR     Hugging Face checkpoint folder (default: the embedded tinystories-656K)
  --max-tokens N  tokens to generate (default 256)
  --temperature T sampling temperature; 0 = greedy (default: the model's generation_config, else 1)
  --seed S        seed for reproducible sampling`;

function fail(message: string): never {
  process.stderr.write(`webgpu-llm: ${message}\n`);
  process.exit(2);
}

function num(name: string, v: string | undefined, int = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n))) fail(`--${name} expects ${int ? 'an integer' : 'a number'}, got '${v}'`);
  return n;
}

async function generate(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      seed: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      'ignore-eos': { type: 'boolean' },
      dtype: { type: 'string' },
    },
  });
  if (positionals.length !== 1) fail(`generate takes one PROMPT argument\n${USAGE}`);
  const dtype = values.dtype ?? 'auto';
  if (!['auto', 'float32', 'float16'].includes(dtype)) fail(`--dtype must be auto, float32 or float16, got '${dtype}'`);
  const llm = await LLM.create({ model: values.model, dtype: dtype as 'auto' });
  const init: SamplingParamsInit = {
    maxTokens: num('max-tokens', values['max-tokens'], true) ?? 256,
    temperature: num('temperature', values.temperature),
    seed: num('seed', values.seed, true),
    topP: num('top-p', values['top-p']),
    topK: num('top-k', values['top-k'], true),
    ignoreEos: values['ignore-eos'],
    outputKind: 'delta',
  };
  const params = llm.getDefaultSamplingParams().clone(init);
  const stream = llm.engine.addRequest({ prompt: positionals[0], params });
  const t0 = performance.now();
  let tokens = 0;
  process.stdout.write(positionals[0]);
  for await (const out of stream) {
    process.stdout.write(out.outputs[0].text);
    tokens += out.outputs[0].tokenIds.length;
  }
  process.stdout.write('\n');
  const s = (performance.now() - t0) / 1000;
  process.stderr.write(`[${tokens} tokens in ${s.toFixed(2)} s, ${(tokens / s).toFixed(1)} tokens/s]\n`);
  await llm.dispose();
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'generate') return generate(rest);
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  fail(`unknown command '${command}'\n${USAGE}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => fail(err instanceof Error ? err.message : String(err)),
);
