/**
 * The page half of worker mode: WorkerLLM has LLM's API (create, generate, chat, engine.addRequest streams with
 * abort signals, getDefaultSamplingParams, dispose) while the model runs in a Web Worker (worker.ts), so that the
 * page's thread stays free for the UI. Outputs arrive as plain data, the same RequestOutput records LLM gives.
 *
 * @example
 * import { WorkerLLM, SamplingParams } from 'webgpu-llm/browser';
 * const llm = await WorkerLLM.create({ model: 'HuggingFaceTB/SmolLM2-135M-Instruct', onProgress: console.log });
 * const stream = llm.engine.addRequest({ prompt: 'Hello', params: new SamplingParams({ outputKind: 'delta' }), signal });
 * for await (const out of stream) append(out.outputs[0].text);
 */
import type { ChatMessage, ChatTemplateOptions } from '../../src/chat/index.js';
import type { ModelConfig } from '../../src/config/model-config.js';
import type { PromptInput } from '../../src/engine/llm-engine.js';
import { RequestStream } from '../../src/engine/request-stream.js';
import { CapacityError, InvalidArgumentError, ModelFileError } from '../../src/errors.js';
import type { LLMOptions } from '../../src/llm.js';
import type { RequestOutput } from '../../src/outputs.js';
import type { DownloadProgress } from '../../src/platform.js';
import { SamplingParams } from '../../src/sampling-params.js';
import { isRepoId } from '../../src/sources/hub-source.js';
import { paramsToInit, type FromWorker, type ToWorker, type WireError, type WorkerLLMOptions, type WorkerModelInfo } from './worker.js';

export interface WorkerLLMCreateOptions extends Omit<LLMOptions, 'platform'> {
  /** A worker that calls serveLLMWorker(); default: a module worker that imports this bundle and calls it. */
  worker?: Worker;
}

/** The error a worker reported, as the class it was thrown as. */
function fromWire(e: WireError): Error {
  const err =
    e.name === 'InvalidArgumentError' ? new InvalidArgumentError(e.field ?? '', e.message)
    : e.name === 'CapacityError' ? new CapacityError(e.message)
    : e.name === 'ModelFileError' ? Object.assign(new ModelFileError(e.file ?? '', ''), { message: e.message })
    : Object.assign(new Error(e.message), { name: e.name });
  return err;
}

/** A module worker from a blob that imports this very bundle (dist/browser.js) and serves an LLM. */
function defaultWorker(): Worker {
  const src = `import { serveLLMWorker } from ${JSON.stringify(import.meta.url)};\nserveLLMWorker();\n`;
  return new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module', name: 'webgpu-llm' });
}

/** The engine part of the proxy: streaming requests, as LLMEngine.addRequest. */
export class WorkerEngine {
  private nextId = 0;
  /** Open requests by id. */
  readonly streams = new Map<string, RequestStream>();

  constructor(
    private readonly post: (m: ToWorker) => void,
    /** The model's normalized config.json. */
    readonly config: ModelConfig,
  ) {}

  /** Adds a request; the stream yields its outputs as the worker produces them. Aborting the signal stops it. */
  addRequest(init: { prompt: PromptInput; params?: SamplingParams; signal?: AbortSignal; requestId?: string }): RequestStream {
    return this.submit({ prompt: init.prompt }, init.params, init.signal, init.requestId);
  }

  /** A chat request: the worker renders the conversation with the model's chat template, then streams the reply. */
  addChatRequest(init: { messages: ChatMessage[]; params?: SamplingParams; signal?: AbortSignal; chatOptions?: ChatTemplateOptions }): RequestStream {
    return this.submit({ messages: init.messages, chatOptions: init.chatOptions }, init.params, init.signal);
  }

  abort(requestId: string): void {
    if (this.streams.has(requestId)) this.post({ type: 'abort', id: requestId });
  }

  private submit(
    what: { prompt?: PromptInput; messages?: ChatMessage[]; chatOptions?: ChatTemplateOptions },
    params: SamplingParams | undefined,
    signal: AbortSignal | undefined,
    requestId = `w${this.nextId++}`,
  ): RequestStream {
    if (params !== undefined && !(params instanceof SamplingParams)) throw new InvalidArgumentError('params', 'must be a SamplingParams');
    if (params?.logitsProcessors?.length) {
      throw new InvalidArgumentError('logitsProcessors', 'logits processors are functions and cannot be sent to a worker; use LLM on this thread');
    }
    if (this.streams.has(requestId)) throw new InvalidArgumentError('requestId', `request id '${requestId}' is already running`);
    const stream = new RequestStream(requestId);
    this.streams.set(requestId, stream);
    this.post({ type: 'add', id: requestId, ...what, params: params ? paramsToInit(params) : null });
    if (signal) {
      if (signal.aborted) this.abort(requestId);
      else signal.addEventListener('abort', () => this.abort(requestId), { once: true });
    }
    return stream;
  }

  /** Routes a worker message to its stream. */
  deliver(m: Extract<FromWorker, { type: 'output' | 'error' }>): void {
    const stream = this.streams.get(m.id!);
    if (!stream) return;
    if (m.type === 'output') {
      stream.push(m.output);
      if (m.output.finished) this.streams.delete(m.id);
    } else {
      stream.fail(fromWire(m.error));
      this.streams.delete(m.id!);
    }
  }
}

/**
 * LLM's API over a Web Worker. Options are LLM's (functions other than onProgress cannot cross to the worker).
 */
export class WorkerLLM {
  private constructor(
    private readonly worker: Worker,
    readonly engine: WorkerEngine,
    private readonly info: WorkerModelInfo,
    private readonly ownsWorker: boolean,
  ) {}

  /** Starts the worker (unless one is given), loads the model there, and resolves once it is ready. */
  static async create(options: WorkerLLMCreateOptions = {}): Promise<WorkerLLM> {
    const { worker: given, onProgress, ...rest } = options;
    const worker = given ?? defaultWorker();
    const opts: WorkerLLMOptions = { ...rest };
    // The worker's own URL is a blob: resolve page-relative model URLs here.
    if (opts.model !== undefined && !isRepoId(opts.model)) opts.model = new URL(opts.model, globalThis.location?.href).href;
    const post = (m: ToWorker) => worker.postMessage(m);
    let engine: WorkerEngine | null = null;
    const ready = new Promise<WorkerModelInfo>((resolve, reject) => {
      worker.addEventListener('message', (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === 'ready') resolve(m.info);
        else if (m.type === 'progress') onProgress?.(m.progress as DownloadProgress);
        else if (m.type === 'error' && m.id === null) reject(fromWire(m.error));
        else if (m.type === 'output' || m.type === 'error') engine?.deliver(m);
      });
      worker.addEventListener('error', (e) => reject(new Error(`the worker failed to start: ${e.message || 'script error'}`)));
    });
    post({ type: 'create', options: opts });
    let info: WorkerModelInfo;
    try {
      info = await ready;
    } catch (e) {
      if (!given) worker.terminate();
      throw e;
    }
    engine = new WorkerEngine(post, info.config);
    return new WorkerLLM(worker, engine, info, !given);
  }

  /** Whether the model has a chat template (chat() then needs no template of its own). */
  get hasChatTemplate(): boolean {
    return this.info.hasChatTemplate;
  }

  /** As LLM.generate: outputs in prompt order. */
  async generate(prompts: PromptInput | PromptInput[], params?: SamplingParams | SamplingParams[]): Promise<RequestOutput[]> {
    const list = Array.isArray(prompts) ? prompts : [prompts];
    if (Array.isArray(params) && params.length !== list.length) {
      throw new InvalidArgumentError('samplingParams', `got ${params.length} SamplingParams for ${list.length} prompts`);
    }
    const streams = list.map((prompt, i) => this.engine.addRequest({ prompt, params: Array.isArray(params) ? params[i] : params }));
    return Promise.all(streams.map((s) => s.final()));
  }

  /** As LLM.chat, for one conversation or a batch of them. */
  async chat(messages: ChatMessage[] | ChatMessage[][], params?: SamplingParams | SamplingParams[], opts: ChatTemplateOptions = {}): Promise<RequestOutput[]> {
    const conversations = messages.every((m) => Array.isArray(m)) ? (messages as ChatMessage[][]) : [messages as ChatMessage[]];
    const streams = conversations.map((c, i) => this.engine.addChatRequest({ messages: c, params: Array.isArray(params) ? params[i] : params, chatOptions: opts }));
    return Promise.all(streams.map((s) => s.final()));
  }

  /** vLLM's defaults with the model's generation_config.json applied. */
  getDefaultSamplingParams(): SamplingParams {
    return new SamplingParams(this.info.defaultParams);
  }

  /** Frees the model; ends the worker if WorkerLLM started it. */
  async dispose(): Promise<void> {
    this.worker.postMessage({ type: 'dispose' } satisfies ToWorker);
    for (const s of this.engine.streams.values()) s.fail(new Error('the WorkerLLM was disposed'));
    this.engine.streams.clear();
    if (this.ownsWorker) setTimeout(() => this.worker.terminate(), 100); // let the worker free its GPU memory first
  }
}
