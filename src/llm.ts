/**
 * The offline entry point, as vLLM's `LLM`: load a model once, then generate for many prompts at once.
 *
 * @example
 * import { LLM, SamplingParams } from 'webgpu-llm';
 * const llm = await LLM.create({ model: '/models/tinystories' });
 * const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 32 }));
 * console.log(out.outputs[0].text);
 */
import { beamSearch, type BeamSearchOutput, type BeamSearchParams } from './beam-search.js';
import { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat/index.js';
import type { ExecutorLoader } from './engine/executor.js';
import { GpuModelRunner } from './worker/gpu-model-runner.js';
import { CpuModelRunner } from './cpu/cpu-model-runner.js';
import { LLMEngine, type EngineOptions, type PromptInput } from './engine/llm-engine.js';
import { InvalidArgumentError } from './errors.js';
import { parseGenerationConfig } from './config/generation-config.js';
import type { RequestOutput } from './outputs.js';
import type { Platform } from './platform.js';
import type { Tokenizer } from './tokenizer/index.js';
import { resolveModel, type ModelOptions } from './resolve-model.js';
import { SamplingParams } from './sampling-params.js';
import { STRUCTURED_KINDS as STRUCTURED_KIND_KEYS } from './sampling/structured/params.js';
import { parseAssistant, type AssistantParsing } from './tool-calls/assistant-message.js';
import { forcedTools, type ToolChoice } from './tool-calls/forced-tools.js';
import { REASONING_PARSERS, type ReasoningParser } from './tool-calls/reasoning-parsers.js';
import { TOOL_PARSERS, type ToolParser } from './tool-calls/tool-parsers.js';

/** `LLM.generate`'s options beyond prompts and params. */
export interface GenerateOptions {
  /**
   * One priority per prompt (vLLM's `priority`): lower runs first when the LLM was made with schedulingPolicy
   * 'priority'; any non-zero value is an error under the default 'fcfs'.
   */
  priority?: number[];
}

export interface LLMOptions extends Omit<EngineOptions, 'generationConfig'>, ModelOptions {
  /**
   * A local folder (Node), a URL prefix, or a Hugging Face repo id (`org/name`, with `revision`); a GGUF file (path or
   * URL ending in .gguf) or `org/name:Q4_K_M` (a repo's GGUF of that quant type); omitted: the embedded default
   * model (tinystories-656K). See resolve-model.ts.
   */
  model?: string;
  /**
   * Default sampling parameters, as vLLM's `generation_config`: 'auto' (default) from the model's
   * generation_config.json, 'vllm' none (vLLM's own defaults), or a folder, URL prefix or repo id (as `model`) whose
   * generation_config.json is used instead of the model's.
   * @example
   * await LLM.create({ model: 'Qwen/Qwen2.5-0.5B-Instruct', generationConfig: './my-defaults' });
   */
  generationConfig?: 'auto' | 'vllm' | string;
  /** The platform port; the package's entry points (Node, browser) provide it. */
  platform?: Platform;
  /**
   * Where the model runs: 'webgpu' (a WebGPU adapter, else an error), 'cpu' (the WebAssembly backend, src/cpu/:
   * any runtime, no adapter needed), or 'auto' (default): WebGPU when the platform has an adapter, else the CPU,
   * saying which in one log line.
   * @example
   * const llm = await LLM.create({ device: 'cpu' }); // the embedded model on the CPU backend
   */
  device?: 'auto' | 'webgpu' | 'cpu';
  /**
   * Threads of the CPU backend (its matmuls split by rows; same outputs): default the platform's cores (Node), 1
   * where the platform gives no workers.
   */
  cpuThreads?: number;
  /**
   * The CPU backend's relaxed SIMD kernels (q4_0 matmuls, 16 multiply-adds per instruction; the same outputs bit for
   * bit): default where the engine runs them correctly (a known-answer check: Chromium 156, Node 22 and 24, Deno 2.9
   * and Bun 1.4 pass, Node 20 does not) and faster than the SIMD128 ones (timed once per process: Node 22's V8 runs
   * them slower); false: SIMD128 only.
   */
  cpuRelaxedSimd?: boolean;
}

/**
 * `llm.chat`'s options: the chat template's (`tools`, `chatTemplateKwargs`, ...) and, as the server's request fields
 * and flags, how tool calls and reasoning are read back onto the outputs (CompletionOutput.toolCalls / reasoning).
 */
export interface ChatOptions extends ChatTemplateOptions {
  /**
   * OpenAI's tool_choice (default 'auto' with tools): 'required' or `{type: 'function', function: {name}}`
   * constrain the output to valid calls of the tools (their parameter schemas), as vLLM does; 'auto' reads calls
   * out of the text when a `toolParser` is given; 'none' leaves the text alone.
   */
  toolChoice?: ToolChoice;
  /** false: 'required' makes exactly one call (OpenAI's parallel_tool_calls). Default true. */
  parallelToolCalls?: boolean;
  /** Forced tool calls as compact JSON (the server's structured_outputs.disable_any_whitespace). Default false. */
  disableAnyWhitespace?: boolean;
  /** For toolChoice 'auto': vLLM's --tool-call-parser ('hermes', 'llama3_json', 'mistral', 'pythonic') or a parser. */
  toolParser?: string | ToolParser;
  /** vLLM's --reasoning-parser ('qwen3', 'deepseek_r1') or a parser: the think block goes to `reasoning`. */
  reasoningParser?: string | ReasoningParser;
}

let defaultPlatform: Platform | undefined;

/**
 * The executor loader options.device picks: the WebGPU runner, the CPU runner, or ('auto') WebGPU when the platform
 * gives an adapter, else the CPU (then one log line says so, and why; the WebGPU choice, the expected one, is quiet).
 */
async function executorLoader(platform: Platform, o: LLMOptions): Promise<ExecutorLoader> {
  const device = o.device ?? 'auto';
  if (device !== 'auto' && device !== 'webgpu' && device !== 'cpu') {
    throw new InvalidArgumentError('device', `device must be 'auto', 'webgpu' or 'cpu', got ${JSON.stringify(device)}`);
  }
  const host = platform.cpuWorkers ?? null;
  const threads = o.cpuThreads ?? host?.defaultThreads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new InvalidArgumentError('cpuThreads', `cpuThreads must be a positive integer, got ${threads}`);
  const cpu: ExecutorLoader = (m, opts) => CpuModelRunner.load(m, opts, { threads, host, relaxed: o.cpuRelaxedSimd });
  if (device === 'cpu') return cpu;
  if (device === 'webgpu') {
    const gpu = await platform.gpu();
    return (m, opts) => GpuModelRunner.load(m, gpu, opts);
  }
  const log = o.log ?? console.warn;
  let why: string;
  try {
    const gpu = await platform.gpu();
    const adapter = await gpu.requestAdapter();
    if (adapter) {
      return (m, opts) => GpuModelRunner.load(m, gpu, opts);
    }
    why = 'no WebGPU adapter';
  } catch (err) {
    why = `WebGPU unavailable: ${err instanceof Error ? err.message : String(err)}`;
  }
  log(`webgpu-llm: device 'auto': the CPU backend (WebAssembly), ${why}`);
  return cpu;
}

/** Called by the package entry (bindings/node, bindings/browser) to provide the platform. */
export function setDefaultPlatform(platform: Platform): void {
  defaultPlatform = platform;
}

export class LLM {
  /** Resolves when the model is loaded; methods await it, so `new LLM(opts)` is usable at once. */
  readonly ready: Promise<void>;
  private engineOrNull: LLMEngine | null = null;
  /** Set by dispose, so later calls say so rather than "not loaded yet". */
  private disposed = false;

  constructor(readonly options: LLMOptions = {}) {
    this.ready = this.load();
    this.ready.catch(() => {}); // surfaced by the first method call instead of as an unhandled rejection
  }

  /** Creates an LLM and waits for its model to load. */
  static async create(options: LLMOptions = {}): Promise<LLM> {
    const llm = new LLM(options);
    await llm.ready;
    return llm;
  }

  /** The engine (continuous batching, streaming requests); available once `ready` resolves. */
  get engine(): LLMEngine {
    if (this.disposed) throw new Error('the LLM was disposed: create a new one (LLM.create)');
    if (!this.engineOrNull) throw new Error('the model is not loaded yet: await llm.ready (or use LLM.create)');
    return this.engineOrNull;
  }

  private async load(): Promise<void> {
    const platform = this.options.platform ?? defaultPlatform;
    if (!platform) throw new Error('no platform: import webgpu-llm through its Node or browser entry point');
    const model = await resolveModel(platform, this.options);
    const gc = this.options.generationConfig;
    let generationConfig: EngineOptions['generationConfig'] = gc === 'vllm' ? 'vllm' : 'auto';
    if (gc !== undefined && gc !== 'auto' && gc !== 'vllm') {
      const folder = await platform.openModel(gc, this.options);
      const file = `${folder.name}/generation_config.json`;
      if (!(await folder.exists('generation_config.json'))) throw new InvalidArgumentError('generationConfig', `${file} does not exist (expected 'auto', 'vllm' or a folder holding it)`);
      generationConfig = parseGenerationConfig(await folder.readText('generation_config.json'), file);
    }
    const loadRunner = await executorLoader(platform, this.options);
    // A speculative draft model is found as `model` is (same platform, hub options), under its own name and revision.
    const openModel = (name: string, revision: string | null) => resolveModel(platform, { ...this.options, model: name, revision: revision ?? undefined, ggufFile: undefined, tokenizer: undefined });
    this.engineOrNull = await LLMEngine.create(model, loadRunner, { ...this.options, generationConfig }, openModel);
  }

  /**
   * Generates completions for one prompt or many, batched together; outputs come back in prompt order.
   * A prompt is a string or `{ promptTokenIds }`. `params` may be one SamplingParams or one per prompt.
   */
  async generate(prompts: PromptInput | PromptInput[], params?: SamplingParams | SamplingParams[], opts: GenerateOptions = {}): Promise<RequestOutput[]> {
    await this.ready;
    const list = Array.isArray(prompts) ? prompts : [prompts];
    if (Array.isArray(params) && params.length !== list.length) {
      throw new InvalidArgumentError('samplingParams', `got ${params.length} SamplingParams for ${list.length} prompts`);
    }
    const { priority } = opts;
    if (priority !== undefined && (!Array.isArray(priority) || priority.length !== list.length)) {
      // vLLM: "The lengths of prompts and priority must be the same."
      throw new InvalidArgumentError('priority', `priority must be a list of ${list.length} integers (one per prompt), got ${JSON.stringify(priority)}`);
    }
    const perPrompt = (i: number) => (Array.isArray(params) ? params[i] : params) ?? this.engine.defaultSamplingParams();
    // Validate every request before any runs, so that one bad prompt fails the call without side effects.
    const requests = list.map((prompt, i) => this.engine.prepareRequest({ prompt, params: perPrompt(i), priority: priority?.[i] }));
    const streams = requests.map((r) => this.engine.submit(r));
    return Promise.all(streams.map((s) => s.final()));
  }

  /**
   * Generates replies to one conversation or a batch of them (a list of lists), as vLLM's `LLM.chat`: each is
   * rendered with the model's chat template (or `opts.chatTemplate`), tokenized without adding special tokens again,
   * and generated like `generate({ promptTokenIds })`; each output's `prompt` is the rendered text.
   *
   * With `tools`, `toolChoice` 'required' or a named function constrains each output to valid calls and puts them on
   * `outputs[i].toolCalls` (the server's tool_choice, shared code); 'auto' with a `toolParser` reads calls out of the
   * text; a `reasoningParser` splits the think block into `outputs[i].reasoning`. `content` is the rest.
   *
   * @example
   * const [out] = await llm.chat([{ role: 'user', content: 'Tell me a story.' }], new SamplingParams({ maxTokens: 64 }));
   * const outs = await llm.chat([conversationA, conversationB], params, { chatTemplateKwargs: { enable_thinking: false } });
   * const [call] = await llm.chat(messages, params, { tools, toolChoice: 'required' });
   * call.outputs[0].toolCalls; // [{ id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]
   */
  async chat(
    messages: ChatMessage[] | ChatMessage[][],
    samplingParams?: SamplingParams | SamplingParams[],
    opts: ChatOptions = {},
  ): Promise<RequestOutput[]> {
    await this.ready;
    if (!Array.isArray(messages)) throw new InvalidArgumentError('messages', 'messages must be a list of messages, or a list of conversations');
    // vLLM: a list whose items are all lists is a batch of conversations.
    const conversations = messages.every((m) => Array.isArray(m)) ? (messages as ChatMessage[][]) : [messages as ChatMessage[]];
    const { toolChoice, parallelToolCalls, toolParser, reasoningParser, disableAnyWhitespace, ...templateOpts } = opts;
    const parsing = this.assistantParsing(opts);
    const prompts = conversations.map((c) => {
      const { prompt, promptTokenIds } = applyChatTemplate(this.engine.tokenizer, c, templateOpts);
      return { prompt, promptTokenIds };
    });
    let params = samplingParams;
    if (parsing) {
      const adapt = (p: SamplingParams) => {
        if (parsing.forced) {
          if (p.structuredOutputs && STRUCTURED_KIND_KEYS.some((k) => p.structuredOutputs![k] != null && p.structuredOutputs![k] !== false)) {
            throw new InvalidArgumentError('toolChoice', `toolChoice ${JSON.stringify(toolChoice)} cannot be combined with structuredOutputs`);
          }
          const compact = disableAnyWhitespace ? { disableAnyWhitespace: true } : {};
          return p.clone({ structuredOutputs: { ...p.structuredOutputs, ...compact, ...parsing.forced.structured } });
        }
        // A parser whose marker is a special token (mistral's [TOOL_CALLS]) needs it in the text.
        if (parsing.toolParser?.needsSpecialTokens && !p.setFields.has('skipSpecialTokens')) return p.clone({ skipSpecialTokens: false });
        return p;
      };
      const base = params ?? this.engine.defaultSamplingParams();
      params = Array.isArray(base) ? base.map(adapt) : adapt(base);
    }
    const outs = await this.generate(prompts, params);
    if (parsing) for (const r of outs) for (const o of r.outputs) Object.assign(o, parseAssistant(o.text, parsing));
    return outs;
  }

  /** How chat outputs are read back (null: they are not). */
  private assistantParsing(opts: ChatOptions): AssistantParsing | null {
    const forced = forcedTools(opts.tools as never, opts.toolChoice, opts.parallelToolCalls);
    const named = <P>(v: string | P | undefined, table: Record<string, P>, field: string): P | null => {
      if (v === undefined) return null;
      if (typeof v !== 'string') return v;
      const p = table[v];
      if (!p) throw new InvalidArgumentError(field, `unknown ${field} '${v}' (one of ${Object.keys(table).join(', ')})`);
      return p;
    };
    const auto = !forced && (opts.tools?.length ?? 0) > 0 && (opts.toolChoice ?? 'auto') === 'auto';
    const toolParser = named(opts.toolParser, TOOL_PARSERS, 'toolParser');
    const reasoning = named(opts.reasoningParser, REASONING_PARSERS, 'reasoningParser');
    const parsing = { forced, toolParser: auto ? toolParser : null, reasoning };
    return parsing.forced || parsing.toolParser || parsing.reasoning ? parsing : null;
  }

  /**
   * Beam search over one prompt or many (strings or `{ promptTokenIds }`), as vLLM's `LLM.beam_search`: all
   * prompts' beams run batched, each step one token; returns per prompt the best `beamWidth` sequences, best first.
   *
   * @example
   * const [out] = await llm.beamSearch(['Once upon a time'], new BeamSearchParams({ beamWidth: 4, maxTokens: 16 }));
   * console.log(out.sequences[0].text, out.sequences[0].cumulativeLogprob);
   */
  async beamSearch(prompts: PromptInput | PromptInput[], params: BeamSearchParams, opts: { signal?: AbortSignal } = {}): Promise<BeamSearchOutput[]> {
    await this.ready;
    return beamSearch(this.engine, Array.isArray(prompts) ? prompts : [prompts], params, opts);
  }

  /**
   * The model's tokenizer, as vLLM's `LLM.get_tokenizer()` (available once `ready` resolves).
   *
   * @example
   * const ids = llm.getTokenizer().encode('Once upon a time'); // BOS included where the model adds one
   */
  getTokenizer(): Tokenizer {
    return this.engine.tokenizer;
  }

  /** The default SamplingParams: vLLM's, with the model's generation_config.json applied. */
  getDefaultSamplingParams(): SamplingParams {
    return this.engine.defaultSamplingParams();
  }

  /** Frees the GPU resources. */
  async dispose(): Promise<void> {
    await this.ready.catch(() => {});
    this.disposed = true;
    this.engineOrNull?.dispose();
    this.engineOrNull = null;
  }
}
