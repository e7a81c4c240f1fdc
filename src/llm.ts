/**
 * The offline entry point, as vLLM's `LLM`: load a model once, then generate for many prompts at once.
 *
 * @example
 * import { LLM, SamplingParams } from 'webgpu-llm';
 * const llm = await LLM.create({ model: '/models/tinystories' });
 * const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 32 }));
 * console.log(out.outputs[0].text);
 */
import { LLMEngine, type EngineOptions, type PromptInput } from './engine/llm-engine.js';
import { InvalidArgumentError } from './errors.js';
import type { RequestOutput } from './outputs.js';
import type { Platform } from './platform.js';
import { SamplingParams } from './sampling-params.js';

export interface LLMOptions extends EngineOptions {
  /** A local folder, URL or Hugging Face repo id; omitted: the embedded default model (tinystories-656K). */
  model?: string;
  /** The platform port; the package's entry points (Node, browser) provide it. */
  platform?: Platform;
}

let defaultPlatform: Platform | undefined;

/** Called by the package entry (bindings/node, bindings/browser) to provide the platform. */
export function setDefaultPlatform(platform: Platform): void {
  defaultPlatform = platform;
}

export class LLM {
  /** Resolves when the model is loaded; methods await it, so `new LLM(opts)` is usable at once. */
  readonly ready: Promise<void>;
  private engineOrNull: LLMEngine | null = null;

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
    if (!this.engineOrNull) throw new Error('the model is not loaded yet: await llm.ready (or use LLM.create)');
    return this.engineOrNull;
  }

  private async load(): Promise<void> {
    const platform = this.options.platform ?? defaultPlatform;
    if (!platform) throw new Error('no platform: import webgpu-llm through its Node or browser entry point');
    const source = await platform.openModel(this.options.model);
    this.engineOrNull = await LLMEngine.create(source, await platform.gpu(), this.options);
  }

  /**
   * Generates completions for one prompt or many, batched together; outputs come back in prompt order.
   * A prompt is a string or `{ promptTokenIds }`. `params` may be one SamplingParams or one per prompt.
   */
  async generate(prompts: PromptInput | PromptInput[], params?: SamplingParams | SamplingParams[]): Promise<RequestOutput[]> {
    await this.ready;
    const list = Array.isArray(prompts) ? prompts : [prompts];
    if (Array.isArray(params) && params.length !== list.length) {
      throw new InvalidArgumentError('samplingParams', `got ${params.length} SamplingParams for ${list.length} prompts`);
    }
    const perPrompt = (i: number) => (Array.isArray(params) ? params[i] : params) ?? this.engine.defaultSamplingParams();
    // Validate every request before any runs, so that one bad prompt fails the call without side effects.
    const requests = list.map((prompt, i) => this.engine.prepareRequest({ prompt, params: perPrompt(i) }));
    const streams = requests.map((r) => this.engine.submit(r));
    return Promise.all(streams.map((s) => s.final()));
  }

  /** The default SamplingParams: vLLM's, with the model's generation_config.json applied. */
  getDefaultSamplingParams(): SamplingParams {
    return this.engine.defaultSamplingParams();
  }

  /** Frees the GPU resources. */
  async dispose(): Promise<void> {
    await this.ready.catch(() => {});
    this.engineOrNull?.dispose();
    this.engineOrNull = null;
  }
}
