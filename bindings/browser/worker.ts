/**
 * The worker half of worker mode: an LLM inside a Web Worker, driven by messages from a WorkerLLM proxy on the page
 * (worker-llm.ts), so that loading and generation never block the page's thread.
 *
 * Wire protocol (structured-clone messages; every field is plain data):
 *   page -> worker: create {options} | add {id, prompt | messages, params} | abort {id} | dispose
 *   worker -> page: ready {info} | progress {progress} | output {id, output} | error {id, error}
 * An `error` with id null failed `create`; otherwise it ends request `id`. The last `output` of a request has
 * `finished: true`.
 *
 * @example
 * // worker.js (or let WorkerLLM.create() start one for you)
 * import { serveLLMWorker } from 'webgpu-llm/browser';
 * serveLLMWorker();
 */
import { applyChatTemplate, type ChatMessage, type ChatTemplateOptions } from '../../src/chat/index.js';
import type { ModelConfig } from '../../src/config/model-config.js';
import type { PromptInput } from '../../src/engine/llm-engine.js';
import { LLM, type LLMOptions } from '../../src/llm.js';
import type { RequestOutput } from '../../src/outputs.js';
import type { DownloadProgress } from '../../src/platform.js';
import { SamplingParams, type SamplingParamsInit } from '../../src/sampling-params.js';

/** LLMOptions without the parts that cannot cross to a worker (functions, the platform). */
export type WorkerLLMOptions = Omit<LLMOptions, 'onProgress' | 'platform'>;

/** What the page learns once the model is loaded. */
export interface WorkerModelInfo {
  config: ModelConfig;
  /** The fields of getDefaultSamplingParams() (generation_config.json's defaults). */
  defaultParams: SamplingParamsInit;
  /** Whether the tokenizer has a chat template (chat() works without passing one). */
  hasChatTemplate: boolean;
}

export type ToWorker =
  | { type: 'create'; options: WorkerLLMOptions }
  | { type: 'add'; id: string; prompt?: PromptInput; messages?: ChatMessage[]; chatOptions?: ChatTemplateOptions; params: SamplingParamsInit | null }
  | { type: 'abort'; id: string }
  | { type: 'dispose' };

/** An error as data: its class name, message and (for InvalidArgumentError) field. */
export interface WireError {
  name: string;
  message: string;
  field?: string;
  file?: string;
}

export type FromWorker =
  | { type: 'ready'; info: WorkerModelInfo }
  | { type: 'progress'; progress: DownloadProgress }
  | { type: 'output'; id: string; output: RequestOutput }
  | { type: 'error'; id: string | null; error: WireError };

/** The explicitly set fields of SamplingParams, as data (logits processors, being functions, cannot be sent). */
export function paramsToInit(p: SamplingParams): SamplingParamsInit {
  const init: Record<string, unknown> = {};
  for (const k of p.setFields) init[k] = (p as unknown as Record<string, unknown>)[k];
  return init as SamplingParamsInit;
}

export function toWireError(e: unknown): WireError {
  const err = e as Error & { field?: string; file?: string };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), field: err?.field, file: err?.file };
}

/** The scope a worker listens on (`self` in a worker); a MessagePort works too. */
interface Port {
  postMessage(message: FromWorker): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<ToWorker>) => void): void;
}

/**
 * Serves one LLM to the page over `port` (default: the worker's global scope). Call it once in a module worker.
 */
export function serveLLMWorker(port: Port = globalThis as unknown as Port): void {
  let llm: LLM | null = null;
  const post = (m: FromWorker) => port.postMessage(m);

  const run = async (m: Extract<ToWorker, { type: 'add' }>) => {
    if (!llm) throw new Error('the worker has no model: create first');
    const prompt = m.messages ? applyChatTemplate(llm.engine.tokenizer, m.messages, m.chatOptions) : m.prompt!;
    const params = m.params ? new SamplingParams(m.params) : undefined;
    for await (const output of llm.engine.addRequest({ prompt, params, requestId: m.id })) post({ type: 'output', id: m.id, output });
  };

  port.addEventListener('message', (e) => {
    const m = e.data;
    if (m.type === 'create') {
      LLM.create({ ...m.options, onProgress: (progress) => post({ type: 'progress', progress }) }).then(
        (created) => {
          llm = created;
          const info: WorkerModelInfo = {
            config: created.engine.config,
            defaultParams: paramsToInit(created.getDefaultSamplingParams()),
            hasChatTemplate: Boolean(created.engine.tokenizer.chatTemplate),
          };
          post({ type: 'ready', info });
        },
        (err) => post({ type: 'error', id: null, error: toWireError(err) }),
      );
    } else if (m.type === 'add') {
      run(m).catch((err) => post({ type: 'error', id: m.id, error: toWireError(err) }));
    } else if (m.type === 'abort') {
      llm?.engine.abort(m.id);
    } else if (m.type === 'dispose') {
      const l = llm;
      llm = null;
      void l?.dispose();
    }
  });
}
