/**
 * Makes the proposer a speculative config asks for: the n-gram lookup, or a draft model loaded on the target's
 * backend after checking that it can draft for the target (the same vocabulary; positions for the target's length).
 *
 * @example
 *   const proposer = await createProposer(config, { target, limits: runner.limits, loadExecutor, options, openModel });
 */
import type { ExecutorLoader, ModelHandle, RunnerLimits } from '../engine/executor.js';
import type { EngineOptions } from '../engine/llm-engine.js';
import { InvalidArgumentError } from '../errors.js';
import type { SpeculativeConfig } from './config.js';
import { DraftModelProposer } from './draft-model-proposer.js';
import { NgramProposer } from './ngram-proposer.js';
import type { Proposer } from './proposer.js';

/** What a proposer may need from the engine being made. */
export interface ProposerContext {
  /** The target model. */
  target: ModelHandle;
  /** The sizes the target's executor settled at. */
  limits: RunnerLimits;
  /** The target's executor loader: a draft model runs on the same backend. */
  loadExecutor: ExecutorLoader;
  options: EngineOptions;
  /** Finds a model by name (LLMOptions.model's forms) and reads its config; absent: draft models cannot be named. */
  openModel?: (name: string, revision: string | null) => Promise<ModelHandle>;
}

export async function createProposer(config: SpeculativeConfig, ctx: ProposerContext): Promise<Proposer> {
  if (config.method === 'ngram') return new NgramProposer(config);
  if (!ctx.openModel) throw new InvalidArgumentError('speculativeConfig.model', "speculativeConfig.model: this engine was made without a model resolver (use LLM.create, which finds draft models as it finds `model`).");
  const draft = await ctx.openModel(config.model, config.revision);
  const t = ctx.target.config;
  const d = draft.config;
  if (d.vocabSize !== t.vocabSize) {
    throw new InvalidArgumentError(
      'speculativeConfig.model',
      `speculativeConfig.model ${draft.name} has a vocabulary of ${d.vocabSize} tokens but the target ${ctx.target.name} has ${t.vocabSize}: a draft model must share the target's tokenizer and vocabulary.`,
    );
  }
  if (d.positions === 'learned' && d.maxModelLen < ctx.limits.maxModelLen) {
    throw new InvalidArgumentError('speculativeConfig.model', `speculativeConfig.model ${draft.name} has ${d.maxModelLen} learned positions, fewer than the target's maxModelLen ${ctx.limits.maxModelLen}: lower maxModelLen.`);
  }
  return DraftModelProposer.load(config, draft, ctx.loadExecutor, ctx.limits, ctx.options);
}
