/**
 * The CLI's flags: the parser and the mapping of every flag onto LLMOptions / ServeOptions in-process, then the
 * built command (dist/cli.js, as a user runs it) for help, version, errors before loading, and each command with
 * the embedded model.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatHelp, parseCommand, parseSize, UsageError } from '../bindings/node/cli/args.js';
import { BENCH_LATENCY, BENCH_THROUGHPUT } from '../bindings/node/cli/bench.js';
import { BENCH_SERVE } from '../bindings/node/cli/bench-serve.js';
import { CHAT } from '../bindings/node/cli/chat.js';
import { DEMO } from '../bindings/node/cli/demo.js';
import { engineOptions, samplingInit } from '../bindings/node/cli/flags.js';
import { GENERATE } from '../bindings/node/cli/generate.js';
import { estimateActivationBytes, estimateWeightBytes } from '../bindings/node/cli/memory.js';
import { SERVE, serveOptions } from '../bindings/node/cli/serve.js';
import { DawnLogFilter } from '../bindings/node/cli/stderr.js';
import { deviceMemory } from '../bindings/node/cli/memory.js';
import { percentile } from '../bindings/node/cli/table.js';
import type { LLM } from '../bindings/node/index.js';
import { startStaticServer } from '../bindings/node/static-server.js';
import { REPO } from './helpers/paths.js';

const run = promisify(execFile);
const CLI = join(REPO, 'dist/cli.js');
const cli = (args: string[], opts: { input?: string } = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn('node', [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.stdin.end(opts.input ?? '');
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });

describe('flag parser', () => {
  it('reads values, = forms, underscores, negations and repeats; rejects the rest with a hint', () => {
    const p = parseCommand(SERVE, ['m', '--port=0', '--max_model_len', '64', '--no-enable-prefix-caching', '--served-model-name', 'a', '--served-model-name', 'b', '--enforce-eager']);
    expect(p.positionals).toEqual(['m']);
    expect(p.values).toEqual({ port: 0, 'max-model-len': 64, 'enable-prefix-caching': false, 'served-model-name': ['a', 'b'], 'enforce-eager': true });
    const err = (args: string[]) => {
      try {
        parseCommand(GENERATE, args);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err(['x', '--max-token', '3'])).toBe('unknown flag --max-token; did you mean --max-tokens?');
    expect(err(['x', '--temprature', '1'])).toBe('unknown flag --temprature; did you mean --temperature?');
    expect(err(['x', '--zzzzzzzzzz'])).toBe("unknown flag --zzzzzzzzzz; see 'webgpu-llm generate --help'");
    expect(err(['x', '--max-tokens', 'abc'])).toBe("--max-tokens expects an integer, got 'abc'");
    expect(err(['x', '--temperature', '-1'])).toBe('--temperature must be at least 0, got -1');
    expect(err(['x', '--top-p', '0'])).toBe('--top-p must be more than 0 and at most 1, got 0');
    expect(err(['x', '--gpu-memory-utilization', '1.5'])).toBe('--gpu-memory-utilization must be more than 0 and at most 1, got 1.5');
    expect(err(['x', '--quantization', 'q9'])).toMatch(/^--quantization must be one of q8_0, q4_0, .*q4_k_m, q5_k_m; got 'q9'$/);
    expect(err(['x', '--max-tokens'])).toBe('--max-tokens needs a value (N)');
    expect(err(['x', '--ignore-eos=maybe'])).toBe("--ignore-eos takes no value (got 'maybe')");
    expect(err([])).toBe('generate needs PROMPT');
    expect(err(['a', 'b'])).toMatch(/unexpected 'b'; quote a prompt with spaces/);
  });

  it('reads byte sizes as vLLM (1k = 1000, 1K = 1024, MiB binary, MB decimal)', () => {
    expect([parseSize('1000'), parseSize('1k'), parseSize('1K'), parseSize('512M'), parseSize('512m'), parseSize('2GiB'), parseSize('2GB'), parseSize('1.5G')]).toEqual([
      1000, 1000, 1024, 512 * 2 ** 20, 512e6, 2 * 2 ** 30, 2e9, 1.5 * 2 ** 30,
    ]);
    expect(parseSize('lots')).toBeNaN();
  });

  it('maps every engine flag onto LLMOptions and the sampling flags onto SamplingParams', () => {
    const { values } = parseCommand(GENERATE, [
      'p', '--revision', 'v1', '--tokenizer', 'tok', '--download-dir', '/c', '--dtype', 'half', '--quantization', 'q4_k_m',
      '--load-format', 'dummy', '--max-model-len', '128', '--generation-config', 'vllm', '--seed', '7', '--kv-cache-memory', '8M',
      '--num-gpu-blocks-override', '9', '--block-size', '32', '--kv-cache-dtype', 'float32', '--max-num-seqs', '4',
      '--max-num-batched-tokens', '256', '--no-enable-prefix-caching', '--enforce-eager', '--no-async-scheduling', '--max-logprobs', '-1',
      '--scheduling-policy', 'priority', '--max-tokens', '5', '--temperature', '0.5', '--top-p', '0.9', '--top-k', '40', '--min-p', '0.1', '--repetition-penalty', '1.2', '--ignore-eos',
    ]);
    expect(engineOptions(values, 'm')).toEqual({
      model: 'm', revision: 'v1', tokenizer: 'tok', downloadDir: '/c', dtype: 'float16', quantization: 'q4_k_m', loadFormat: 'dummy',
      maxModelLen: 128, generationConfig: 'vllm', seed: 7, kvCacheMemoryBytes: 8 * 2 ** 20, numGpuBlocksOverride: 9, blockSize: 32,
      kvCacheDtype: 'float32', maxNumSeqs: 4, maxNumBatchedTokens: 256, enablePrefixCaching: false, enforceEager: true, asyncScheduling: false, maxLogprobs: -1,
      schedulingPolicy: 'priority',
    });
    expect(samplingInit(values)).toEqual({ maxTokens: 5, temperature: 0.5, topP: 0.9, topK: 40, minP: 0.1, repetitionPenalty: 1.2, ignoreEos: true });
    expect(engineOptions(parseCommand(GENERATE, ['p']).values, undefined)).toEqual({ quantization: null });
    expect(() => engineOptions(parseCommand(SERVE, ['--gpu-memory-utilization', '0.5', '--kv-cache-memory', '1G']).values, undefined)).toThrow(/either --gpu-memory-utilization or --kv-cache-memory/);
  });

  it('maps the server flags onto ServeOptions', () => {
    const { values } = parseCommand(SERVE, [
      '--host', '0.0.0.0', '--port', '9000', '--api-key', 'k', '--served-model-name', 'x', '--allowed-origins', 'https://a.example',
      '--max-prompt-chars', '100', '--trust-request-chat-template', '--enable-auto-tool-choice', '--tool-call-parser', 'hermes',
      '--reasoning-parser', 'qwen3', '--disable-log-requests', '--shutdown-grace-period', '3', '--log-level', 'warning',
      '--return-tokens-as-token-ids',
    ]);
    const llm = {} as LLM;
    const o = serveOptions(values, llm, 'm', 'T', () => {});
    expect({ ...o, onInternalError: undefined }).toEqual({
      llm, host: '0.0.0.0', port: 9000, apiKey: 'k', servedModelName: ['x'], chatTemplate: 'T', maxPromptChars: 100,
      allowedOrigins: ['https://a.example'], trustRequestChatTemplate: true, enableAutoToolChoice: true, toolCallParser: 'hermes',
      reasoningParser: 'qwen3', returnTokensAsTokenIds: true, onInternalError: undefined, responsesStore: false,
    });
    expect(values['disable-log-requests']).toBe(true);
    // The Responses store: the flag, or vLLM's environment variable.
    expect(serveOptions(parseCommand(SERVE, ['--enable-responses-store']).values, llm, 'm', 'T', () => {}).responsesStore).toBe(true);
    const env = process.env.VLLM_ENABLE_RESPONSES_API_STORE;
    process.env.VLLM_ENABLE_RESPONSES_API_STORE = '1';
    try {
      expect(serveOptions(parseCommand(SERVE, []).values, llm, 'm', 'T', () => {}).responsesStore).toBe(true);
    } finally {
      if (env === undefined) delete process.env.VLLM_ENABLE_RESPONSES_API_STORE;
      else process.env.VLLM_ENABLE_RESPONSES_API_STORE = env;
    }
    // --reasoning-config: vLLM's JSON keys.
    const rc = (json: string) => engineOptions(parseCommand(SERVE, ['--reasoning-config', json]).values, undefined).reasoningConfig;
    expect(rc('{"reasoning_start_str": "<think>", "reasoning_end_str": "</think>"}')).toEqual({ reasoningStartStr: '<think>', reasoningEndStr: '</think>' });
    expect(() => rc('{"reasoning_start_str": "<think>"}')).toThrow(/--reasoning-config needs "reasoning_start_str" and "reasoning_end_str"/);
    expect(() => rc('nope')).toThrow(/--reasoning-config must be a JSON object/);
    expect(values['shutdown-grace-period']).toBe(3);
  });

  it('writes help that explains every flag of every command', () => {
    for (const spec of [GENERATE, SERVE, CHAT, DEMO, BENCH_LATENCY, BENCH_THROUGHPUT, BENCH_SERVE]) {
      const help = formatHelp(spec);
      for (const f of spec.flags) expect(help).toMatch(new RegExp(`--(\\[no-\\])?${f.name}\\b`));
      for (const line of help.split('\nexamples:')[0].split('\n')) expect(line.length, line).toBeLessThanOrEqual(110);
    }
  });

  it('estimates weights and activations for --gpu-memory-utilization from the config', () => {
    // Llama-3.2-1B's shapes: 1.24e9 parameters, embeddings tied.
    const cfg = { hiddenSize: 2048, numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, intermediateSize: 8192, vocabSize: 128256, gatedMlp: true, tieWordEmbeddings: true, dtype: 'bfloat16' } as never;
    expect(estimateWeightBytes(cfg, {}) / 2).toBeCloseTo(1.2358e9, -7);
    // q8_0: 34 bytes a block of 32 in the layers; embeddings stay f16.
    expect(estimateWeightBytes(cfg, { quantization: 'q8_0' })).toBe(Math.round(128256 * 2048 * 2 + 16 * (2048 * 3072 + 2048 * 2048 + 3 * 2048 * 8192) * (34 / 32)));
    expect(estimateActivationBytes(cfg, {})).toBe(4 * (2048 * (3 * 2048 + 3072 + 2048 + 3 * 8192) + 64 * 128256));
  });

  it("drops Dawn's warning blocks from stderr and passes the rest, partial lines at once", () => {
    const f = new DawnLogFilter();
    const dawn = 'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\n - While initializing adapter (backend=BackendType::Vulkan)\n    at InitializeImpl (/x/PhysicalDeviceVk.cpp:257)\n\nWarning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n';
    let out = '';
    for (const piece of [dawn.slice(0, 5), dawn.slice(5, 90), dawn.slice(90), 'webgpu-llm: real\n', '\rupload [##', '...]', '\n', 'Warn', 'ing: x\n', 'tail']) out += f.push(piece);
    out += f.flush();
    expect(out).toBe('webgpu-llm: real\n\rupload [##...]\ntail');
  });

  it('the static server redirects a mount without its slash (/demo -> /demo/), keeping the query', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-static-'));
    writeFileSync(join(dir, 'index.html'), '<p>demo</p>');
    const { server, url } = await startStaticServer({ '/demo/': dir }, 0);
    try {
      const r = await fetch(`${url}demo?model=x`, { redirect: 'manual' });
      expect([r.status, r.headers.get('location')]).toEqual([301, '/demo/?model=x']);
      expect(await (await fetch(`${url}demo`)).text()).toBe('<p>demo</p>');
      expect((await fetch(`${url}other`)).status).toBe(404);
    } finally {
      server.close();
    }
  });

  it('takes percentiles as numpy', () => {
    expect([percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 99), percentile([5], 90)]).toEqual([2.5, 3.9699999999999998, 5]);
  });
});

describe.skipIf(!existsSync(CLI))('webgpu-llm (built)', () => {
  it('prints help for every command (exit 0), the version, and usage errors before any model loads (exit 2)', async () => {
    for (const args of [['--help'], ['generate', '--help'], ['serve', '-h'], ['chat', '--help'], ['demo', '--help'], ['bench', '--help'], ['bench', 'serve', '--help'], ['bench', 'latency', '--help'], ['help', 'serve']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/usage: webgpu-llm/);
    }
    const serveHelp = (await cli(['serve', '--help'])).stdout;
    for (const flag of ['--host', '--port', '--gpu-memory-utilization', '--kv-cache-memory', '--allowed-origins', '--log-level', '--disable-log-requests']) expect(serveHelp).toContain(flag);
    const genHelp = (await cli(['generate', '--help'])).stdout;
    expect(genHelp).toMatch(/--top-p P\s+nucleus sampling/);
    expect(genHelp).toMatch(/--top-k K\s+sample among the K most likely/);
    expect(genHelp).toMatch(/--ignore-eos\s+keep generating past the end-of-sequence/);
    const pkg = JSON.parse((await run('node', ['-p', `JSON.stringify(require(${JSON.stringify(join(REPO, 'package.json'))}))`])).stdout);
    expect((await cli(['--version'])).stdout).toBe(`webgpu-llm ${pkg.version}\n`);
    // A bad value next to a model that does not exist: the value is reported (nothing was loaded).
    const bad = await cli(['generate', 'x', '--model', '/no/such/dir', '--max-tokens', 'abc']);
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr).toBe("webgpu-llm: --max-tokens expects an integer, got 'abc'\nusage: webgpu-llm generate PROMPT [--model MODEL] [--max-tokens N] [--temperature T] [--seed S] [flags]\n(webgpu-llm generate --help explains every flag)\n");
    expect((await cli(['serve', '--gpu-memory-utilisation', '0.5'])).stderr).toMatch(/^webgpu-llm: unknown flag --gpu-memory-utilisation; did you mean --gpu-memory-utilization\?/);
    expect(await cli(['genrate', 'x'])).toMatchObject({ code: 2, stderr: "webgpu-llm: unknown command 'genrate'; did you mean 'generate'?\n" });
    expect(await cli(['generate', 'x', '--model', '/no/such/dir'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/\/no\/such\/dir/) });
  });

  it('generate: quiet stderr, the new flags, and Dawn / generation_config notices only at --log-level debug', async () => {
    const base = ['generate', 'Once upon a time', '--max-tokens', '8', '--temperature', '0'];
    const plain = await cli(base);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toMatch(/^\[8 tokens in [\d.]+ s, [\d.]+ tokens\/s\]\n$/);
    const flagged = await cli([...base, '--max-model-len', '64', '--generation-config', 'vllm', '--kv-cache-memory', '4M', '--max-num-seqs', '2', '--max-num-batched-tokens', '32', '--block-size', '8', '--no-enable-prefix-caching', '--enforce-eager', '--no-async-scheduling', '--seed', '1', '--dtype', 'float32', '--max-logprobs', '5']);
    expect(flagged).toMatchObject({ code: 0, stdout: plain.stdout });
    // The model's length is checked: a prompt + output past --max-model-len fails.
    expect((await cli([...base.slice(0, 2), '--max-model-len', '4', '--max-tokens', '8'])).stderr).toMatch(/max|length|tokens/i);
    // A chat template renders PROMPT as a user message; only the reply is printed.
    const chat = await cli(['generate', 'Tom and Sue', '--max-tokens', '6', '--temperature', '0', '--chat-template', 'Story: {{ messages[0].content }} went']);
    expect(chat.code).toBe(0);
    expect(chat.stdout.startsWith('Tom')).toBe(false);
    expect(chat.stdout.trim()).not.toBe('');
    const gc = mkdtempSync(join(tmpdir(), 'cli-gc-'));
    writeFileSync(join(gc, 'generation_config.json'), JSON.stringify({ temperature: 0.7, top_k: 5 }));
    const debug = await cli([...base, '--log-level', 'debug', '--generation-config', gc]);
    expect(debug.code).toBe(0);
    expect(debug.stderr).toMatch(/default sampling parameters from the given generation config/);
    if (process.platform === 'linux') expect(debug.stderr).toMatch(/Warning: /); // Dawn's adapter warnings, unfiltered
  });

  it('chat: streams replies to piped lines with the template; /reset forgets; /exit quits', async () => {
    const template = '{% for m in messages %}{{ m.content }}. {% endfor %}';
    const r = await cli(['chat', '--max-tokens', '6', '--temperature', '0', '--chat-template', template], { input: 'Lily had a cat\n/reset\nLily had a cat\n/exit\nnot read\n' });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[1]).toBe('[conversation reset]');
    expect(lines[2]).toBe(lines[0]); // the same first turn after /reset
    expect(lines.length).toBe(4);
    const none = await cli(['chat'], { input: 'hi\n' });
    expect(none).toMatchObject({ code: 1, stderr: expect.stringMatching(/no chat template.*--chat-template FILE\|TEXT/) });
  });

  it('bench latency and throughput print their tables', async () => {
    const lat = await cli(['bench', 'latency', '--input-len', '4', '--output-len', '4', '--batch-size', '2', '--num-iters-warmup', '1', '--num-iters', '2']);
    expect(lat.code).toBe(0);
    expect(lat.stdout).toMatch(/Latency Benchmark Result[\s\S]*Avg latency \(s\):\s+[\d.]+\n[\s\S]*P99 latency \(s\):\s+[\d.]+/);
    const thr = await cli(['bench', 'throughput', '--num-prompts', '3', '--input-len', '4', '--output-len', '4']);
    expect(thr.code).toBe(0);
    expect(thr.stdout).toMatch(/Requests:\s+3\n[\s\S]*Total generated tokens:\s+12\n[\s\S]*Output token throughput \(tok\/s\):\s+[\d.]+/);
  });

  it('serve: vLLM flags, loading progress, request lines, SIGTERM; bench serve drives it over HTTP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-serve-'));
    writeFileSync(join(dir, 'tpl.jinja'), '{% for m in messages %}{{ m.content }} {% endfor %}');
    // A fraction of this machine's memory (lavapipe's, or nvidia-smi's) that leaves about 48 MiB for the KV cache.
    const util = ((112 * 2 ** 20) / (deviceMemory().bytes)).toPrecision(3);
    const p = spawn('node', [CLI, 'serve', '--port', '0', '--served-model-name', 'tiny', '--api-key', 'sk', '--allowed-origins', 'https://a.example', '--chat-template', join(dir, 'tpl.jinja'), '--max-model-len', '96', '--gpu-memory-utilization', util, '--seed', '3', '--no-enable-prefix-caching', '--max-num-batched-tokens', '64', '--quantization', 'q8_0', '--max-logprobs', '3', '--revision', 'main', '--load-format', 'auto'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      p.stderr.on('data', (d) => {
        stderr += d;
        const m = /serving 'tiny' at (\S+)\/v1/.exec(stderr);
        if (m) resolve(m[1]);
      });
      p.on('close', () => reject(new Error(stderr)));
    });
    try {
      expect(stderr).toMatch(/loading the embedded tinystories-656K\n/);
      expect(stderr).toMatch(/upload model\.safetensors [\d.]+ MiB done\n/);
      expect(stderr).toMatch(new RegExp(`--gpu-memory-utilization ${util}: .* KV cache 0\\.0[3-5] GiB`));
      expect(stderr).toMatch(/loaded in [\d.]+ s \(max model len 96, KV cache \d+ blocks of 16 tokens\)/);
      expect(stderr).not.toMatch(/Warning: /);
      const auth = { Authorization: 'Bearer sk', 'Content-Type': 'application/json' };
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      const models = await (await fetch(`${url}/v1/models`, { headers: auth })).json();
      expect(models.data[0]).toMatchObject({ id: 'tiny', max_model_len: 96 });
      const pre = await fetch(`${url}/v1/completions`, { method: 'OPTIONS', headers: { Origin: 'https://a.example', 'Access-Control-Request-Method': 'POST' } });
      expect(pre.headers.get('access-control-allow-origin')).toBe('https://a.example');
      const lp = await fetch(`${url}/v1/completions`, { method: 'POST', headers: auth, body: JSON.stringify({ model: 'tiny', prompt: 'Tom', max_tokens: 2, logprobs: 4 }) });
      expect(lp.status).toBe(400); // --max-logprobs 3
      const chat = await (await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: auth, body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Tom' }], max_tokens: 3, temperature: 0 }) })).json();
      expect(chat.usage.prompt_tokens).toBeGreaterThan(0);
      const bench = await run('node', [CLI, 'bench', 'serve', '--base-url', url, '--api-key', 'sk', '--num-prompts', '3', '--input-len', '6', '--output-len', '4', '--ignore-eos', '--max-concurrency', '2'], { timeout: 60_000 });
      expect(bench.stdout).toMatch(/Successful requests:\s+3\n[\s\S]*Total generated tokens:\s+12\n[\s\S]*Mean TTFT \(ms\):\s+[\d.]+\n[\s\S]*P99 ITL \(ms\):\s+[\d.]+/);
      expect(bench.stdout).toMatch(/Failed requests:\s+0\n/);
      await new Promise((r) => setTimeout(r, 200));
      expect(stderr).toMatch(/POST \/v1\/completions 200 \d+ ms/);
    } finally {
      const closed = new Promise((r) => p.on('close', r));
      p.kill('SIGTERM');
      expect(await closed).toBe(0);
    }
    expect(stderr).toMatch(/SIGTERM: finishing running requests/);
  });

  it.skipIf(!existsSync(join(REPO, 'dist/browser.js')))('demo serves the page, redirecting /demo to /demo/', async () => {
    const p = spawn('node', [CLI, 'demo', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const url = await new Promise<string>((resolve) => {
      let s = '';
      p.stderr.on('data', (d) => {
        s += d;
        const m = /open (\S+)demo\//.exec(s);
        if (m) resolve(m[1]);
      });
    });
    try {
      const r = await fetch(`${url}demo?x=1`, { redirect: 'manual' });
      expect(r.status).toBe(301);
      expect(r.headers.get('location')).toBe('/demo/?x=1');
      expect((await fetch(`${url}demo/`)).status).toBe(200);
    } finally {
      p.kill('SIGINT');
    }
  });
});
