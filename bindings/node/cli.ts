#!/usr/bin/env node
/**
 * The `webgpu-llm` command.
 *
 *   webgpu-llm generate "Once upon a time" [--model DIR] [--max-tokens N] [--temperature T] [--seed S]
 *   webgpu-llm serve [MODEL] [--host H] [--port P] [--api-key KEY] ...   (an OpenAI-compatible server)
 *   webgpu-llm demo [--host H] [--port P]                                 (the browser demo page)
 *
 * Streams the completion to stdout; diagnostics go to stderr.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadChatTemplate } from './chat-template.js';
import { LLM, packageRoot, SamplingParams, type SamplingParamsInit } from './index.js';
import type { DownloadProgress } from '../../src/platform.js';
import { REASONING_PARSERS } from '../../src/server/reasoning-parsers.js';
import { TOOL_PARSERS } from '../../src/server/tool-parsers.js';
import { serve } from './server.js';
import { startStaticServer } from './static-server.js';

const USAGE = `usage: webgpu-llm generate PROMPT [--model DIR] [--max-tokens N] [--temperature T] [--seed S]
                    [--top-p P] [--top-k K] [--ignore-eos] [--dtype auto|float32|float16] [--quantization q8_0|q4_0]
                    [--device auto|webgpu|cpu]

  PROMPT          text to continue
  --model DIR     Hugging Face checkpoint folder (default: the embedded tinystories-656K)
  --max-tokens N  tokens to generate (default 256)
  --temperature T sampling temperature; 0 = greedy (default: the model's generation_config, else 1)
  --seed S        seed for reproducible sampling
  --device D      auto (default: WebGPU when there is an adapter, else the CPU backend), webgpu or cpu

usage: webgpu-llm serve [MODEL] [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--served-model-name NAME]
                  [--max-model-len N] [--max-num-seqs N] [--generation-config auto|vllm|DIR]
                  [--chat-template FILE] [--dtype auto|float32|float16] [--quantization q8_0|q4_0] [--device auto|webgpu|cpu]
                  [--no-async-scheduling] [--enforce-eager] [--max-logprobs N] [--max-prompt-chars N]
                  [--allowed-origins ORIGIN] [--trust-request-chat-template]
                  [--shutdown-grace-period SECONDS] [--enable-auto-tool-choice --tool-call-parser NAME]
                  [--reasoning-parser qwen3|deepseek_r1]

  MODEL                   checkpoint folder to serve (default: the embedded tinystories-656K)
  --api-key KEY           require 'Authorization: Bearer KEY' on /v1/* (default: $VLLM_API_KEY)
  --served-model-name N   the name clients pass as 'model' (repeat for aliases; default: MODEL)
  --generation-config G   'auto': the model's generation_config.json defaults; 'vllm': none; DIR: that folder's
  --chat-template FILE    a Jinja chat template (file or text) instead of the tokenizer's
  --no-async-scheduling   run steps one at a time (by default each step is scheduled and submitted while the
                          previous one runs: vLLM's async scheduling)
  --max-logprobs N        most logprobs / prompt_logprobs a request may ask for (default 20; -1: the vocabulary)
  --shutdown-grace-period S  on SIGTERM, let running requests finish for S seconds (default 10), then end the
                          rest (streams get an error event and [DONE]); SIGINT stops at once
  --trust-request-chat-template  accept a request's own chat_template (default: refused with 400)
  --allowed-origins O     answer CORS for this origin ('*': any; repeat for more; default: no CORS)
  --max-prompt-chars N    most prompt characters a request may send to the tokenizer (default 32 x max model len)
  --enable-auto-tool-choice  with --tool-call-parser NAME (hermes, llama3_json, mistral, pythonic): tool_choice
                          'auto' returns the calls the model writes as message.tool_calls
  --reasoning-parser NAME the think block (qwen3, deepseek_r1) goes to the message's 'reasoning' field
  --enforce-eager         record every step anew (by default a step replays the commands captured the first
                          time a step of its shape ran, as vLLM's CUDA graphs)

usage: webgpu-llm demo [--host 127.0.0.1] [--port 8080]    serve the browser demo (demo/, dist/, models/)`;

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

/**
 * A progress bar on stderr for downloads and weight uploads that last more than a second (only on a terminal).
 */
function progressBar(): ((p: DownloadProgress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const start = performance.now();
  let last = 0;
  return (p) => {
    const now = performance.now();
    const done = p.loadedBytes >= p.totalBytes;
    if (now - start < 1000 || (now - last < 100 && !done)) return;
    last = now;
    const frac = p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 1;
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    const mb = (b: number) => (b / 2 ** 20).toFixed(1);
    process.stderr.write(`\r${p.phase ?? 'download'} ${p.file} [${bar}] ${mb(p.loadedBytes)}/${mb(p.totalBytes)} MiB${done ? '\n' : ''}`);
  };
}

/** --device: auto, webgpu or cpu (absent: auto). */
function deviceFlag(value: string | undefined): 'auto' | 'webgpu' | 'cpu' {
  if (value === undefined) return 'auto';
  if (value !== 'auto' && value !== 'webgpu' && value !== 'cpu') fail(`--device must be auto, webgpu or cpu, got '${value}'`);
  return value;
}

/** --quantization: q8_0 or q4_0 (absent: the checkpoint's dtype). */
function quantizationFlag(value: string | undefined): 'q8_0' | 'q4_0' | null {
  if (value === undefined) return null;
  if (value !== 'q8_0' && value !== 'q4_0') fail(`--quantization must be q8_0 or q4_0, got '${value}'`);
  return value;
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
      quantization: { type: 'string' },
      device: { type: 'string' },
    },
  });
  if (positionals.length !== 1) fail(`generate takes one PROMPT argument\n${USAGE}`);
  const dtype = values.dtype ?? 'auto';
  if (!['auto', 'float32', 'float16'].includes(dtype)) fail(`--dtype must be auto, float32 or float16, got '${dtype}'`);
  const quantization = quantizationFlag(values.quantization);
  const llm = await LLM.create({ model: values.model, dtype: dtype as 'auto', quantization, device: deviceFlag(values.device), onProgress: progressBar() });
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

/** `webgpu-llm serve`: the OpenAI-compatible server until SIGINT/SIGTERM. */
async function serveCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      'api-key': { type: 'string' },
      'served-model-name': { type: 'string', multiple: true },
      'max-model-len': { type: 'string' },
      'max-num-seqs': { type: 'string' },
      'generation-config': { type: 'string', default: 'auto' },
      'chat-template': { type: 'string' },
      dtype: { type: 'string', default: 'auto' },
      quantization: { type: 'string' },
      device: { type: 'string' },
      'async-scheduling': { type: 'boolean', default: true },
      'no-async-scheduling': { type: 'boolean', default: false },
      'enforce-eager': { type: 'boolean', default: false },
      'max-logprobs': { type: 'string' },
      'max-prompt-chars': { type: 'string' },
      'allowed-origins': { type: 'string', multiple: true },
      'trust-request-chat-template': { type: 'boolean', default: false },
      'shutdown-grace-period': { type: 'string', default: '10' },
      'enable-auto-tool-choice': { type: 'boolean', default: false },
      'tool-call-parser': { type: 'string' },
      'reasoning-parser': { type: 'string' },
    },
  });
  if (positionals.length > 1) fail(`serve takes at most one MODEL argument\n${USAGE}`);
  const model = positionals[0] ?? values.model;
  const port = num('port', values.port, true)!;
  if (port < 0 || port > 65535) fail(`--port must be in [0, 65535], got ${port}`);
  const dtype = values.dtype!;
  if (!['auto', 'float32', 'float16'].includes(dtype)) fail(`--dtype must be auto, float32 or float16, got '${dtype}'`);
  // auto, vllm, or a folder (or repo id) whose generation_config.json replaces the model's, as vLLM's flag.
  const gc = values['generation-config']!;
  const maxLogprobs = num('max-logprobs', values['max-logprobs'], true);
  if (maxLogprobs !== undefined && maxLogprobs < -1) fail(`--max-logprobs must be -1 or at least 0, got ${maxLogprobs}`);
  const maxPromptChars = num('max-prompt-chars', values['max-prompt-chars'], true);
  if (maxPromptChars !== undefined && maxPromptChars < 1) fail(`--max-prompt-chars must be at least 1, got ${maxPromptChars}`);
  const graceS = num('shutdown-grace-period', values['shutdown-grace-period'])!;
  if (graceS < 0) fail(`--shutdown-grace-period must be at least 0, got ${graceS}`);
  const toolCallParser = values['tool-call-parser'];
  if (values['enable-auto-tool-choice'] && !toolCallParser) fail('--enable-auto-tool-choice needs --tool-call-parser NAME');
  if (toolCallParser !== undefined && !(toolCallParser in TOOL_PARSERS)) fail(`--tool-call-parser must be one of ${Object.keys(TOOL_PARSERS).join(', ')}, got '${toolCallParser}'`);
  const reasoningParser = values['reasoning-parser'];
  if (reasoningParser !== undefined && !(reasoningParser in REASONING_PARSERS)) fail(`--reasoning-parser must be one of ${Object.keys(REASONING_PARSERS).join(', ')}, got '${reasoningParser}'`);
  const chatTemplate = values['chat-template'] === undefined ? undefined : await loadChatTemplate(values['chat-template']);
  const quantization = quantizationFlag(values.quantization);
  const llm = await LLM.create({
    model,
    dtype: dtype as 'auto',
    quantization,
    device: deviceFlag(values.device),
    maxModelLen: num('max-model-len', values['max-model-len'], true),
    maxNumSeqs: num('max-num-seqs', values['max-num-seqs'], true),
    generationConfig: gc,
    asyncScheduling: values['async-scheduling'] && !values['no-async-scheduling'],
    enforceEager: values['enforce-eager'],
    maxLogprobs,
  });
  const names = values['served-model-name'] ?? [model ?? 'tinystories-656K'];
  const server = await serve({
    llm,
    host: values.host,
    port,
    apiKey: values['api-key'] || process.env.VLLM_API_KEY || undefined, // empty is unset, as vLLM
    servedModelName: names,
    chatTemplate,
    maxPromptChars,
    allowedOrigins: values['allowed-origins'],
    trustRequestChatTemplate: values['trust-request-chat-template'],
    enableAutoToolChoice: values['enable-auto-tool-choice'],
    toolCallParser,
    reasoningParser,
    onInternalError: (err) => process.stderr.write(`webgpu-llm: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
  });
  process.stderr.write(`webgpu-llm: serving '${names[0]}' at ${server.url}/v1 (Ctrl-C stops)\n`);
  const signal = await new Promise<'SIGINT' | 'SIGTERM'>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  if (signal === 'SIGTERM') {
    process.stderr.write(`webgpu-llm: SIGTERM: finishing running requests (up to ${graceS} s)\n`);
    await server.shutdown(graceS * 1000);
  } else {
    await server.close();
  }
  await llm.dispose();
}

/** Serves the package's demo page beside its browser build and embedded model, until interrupted. */
async function demo(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, host: { type: 'string' } } });
  const root = packageRoot();
  if (!existsSync(join(root, 'dist/browser.js'))) fail(`no browser build at ${join(root, 'dist/browser.js')}: run npm run build`);
  const mounts = { '/demo/': join(root, 'demo'), '/dist/': join(root, 'dist'), '/models/': join(root, 'models') };
  const { url } = await startStaticServer(mounts, num('port', values.port, true) ?? 8080, values.host ?? '127.0.0.1', '/demo/');
  process.stderr.write(`webgpu-llm demo: open ${url}demo/ in a browser with WebGPU (Ctrl-C stops)\n`);
  await new Promise(() => {}); // serve until interrupted
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'generate') return generate(rest);
  if (command === 'serve') return serveCommand(rest);
  if (command === 'demo') return demo(rest);
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
