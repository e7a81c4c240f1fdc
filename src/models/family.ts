/**
 * What a model family's file (src/models/<family>.ts) provides: the Hugging Face classes it loads, its config.json
 * reader and its weight table. The forward is the shared decoder (decoder.ts), whose variations the config's fields
 * select; src/models/registry.ts lists the families.
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody, ModelConfig } from '../config/model-config.js';
import type { WeightSpec } from './weights.js';

export interface ModelFamily {
  /** ModelConfig.modelType of its configs. */
  name: string;
  /** The classes named in config.json's `architectures` that this file loads. */
  architectures: readonly string[];
  /** config.json's `model_type` values, for configs that name no architecture. */
  modelTypes: readonly string[];
  /** config.json keys -> the normalized fields (the family's HF defaults where a key is absent). */
  readConfig(f: JsonFields, architecture: string): ConfigBody;
  /** Every tensor of a checkpoint with this config, in checkpoint order. */
  weights(cfg: ModelConfig): WeightSpec[];
  /** A checkpoint's tensor name as the weight table spells it (GPT-2 is saved with and without `transformer.`). */
  canonicalName?(name: string): string;
}
