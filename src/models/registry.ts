/**
 * The supported families, by the Hugging Face class config.json names, and what they give: parseModelConfig
 * (config.json -> ModelConfig) and checkpointTensors (the weight table). Adding an architecture is a file in
 * src/models/ and a line here.
 */
import { JsonFields } from '../config/json-fields.js';
import { readDtype, type ModelConfig } from '../config/model-config.js';
import type { TensorSpec } from '../loader/dummy.js';
import type { ModelFamily } from './family.js';
import { gemma2 } from './gemma2.js';
import { gemma3 } from './gemma3.js';
import { gpt2 } from './gpt2.js';
import { granite } from './granite.js';
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import { mixtral } from './mixtral.js';
import { olmo2 } from './olmo2.js';
import { opt } from './opt.js';
import { phi3 } from './phi3.js';
import { qwen2 } from './qwen2.js';
import { qwen2Moe } from './qwen2-moe.js';
import { qwen3 } from './qwen3.js';
import { qwen3Moe } from './qwen3-moe.js';
import { smollm3 } from './smollm3.js';
import type { WeightSpec } from './weights.js';

const FAMILIES: readonly ModelFamily[] = [llama, mistral, qwen2, qwen3, phi3, smollm3, granite, olmo2, gemma2, gemma3, mixtral, qwen2Moe, qwen3Moe, opt, gpt2];

const BY_ARCHITECTURE = new Map(FAMILIES.flatMap((f) => f.architectures.map((a) => [a, f] as const)));
const BY_MODEL_TYPE = new Map(FAMILIES.flatMap((f) => f.modelTypes.map((t) => [t, f] as const)));
const BY_NAME = new Map(FAMILIES.map((f) => [f.name, f] as const));

/** The Hugging Face classes that load, e.g. `LlamaForCausalLM`. */
export function supportedArchitectures(): string[] {
  return [...BY_ARCHITECTURE.keys()];
}

/** The family of a parsed config. */
export function familyOf(cfg: ModelConfig): ModelFamily {
  const f = BY_NAME.get(cfg.modelType);
  if (!f) throw new Error(`no model family '${cfg.modelType}'`);
  return f;
}

/**
 * Parses config.json (text or already-parsed JSON) into a ModelConfig.
 * Throws ModelFileError naming `file`, the key and the problem for unsupported architectures, missing required
 * keys and wrong types.
 *
 * @example
 *   const cfg = parseModelConfig(await source.readText('config.json'));
 *   cfg.numKvHeads; // 8 for Llama-3.2-1B
 */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  const f = JsonFields.parse(json, file);
  const { architecture, family } = identify(f);
  const cfg: ModelConfig = {
    architecture,
    modelType: family.name,
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenIds: f.tokenIds('eos_token_id'),
    dtype: readDtype(f),
    raw: f.obj,
    ...family.readConfig(f, architecture),
  };
  if (cfg.numHeads % cfg.numKvHeads !== 0) {
    f.fail('num_key_value_heads', `(${cfg.numKvHeads}) must divide num_attention_heads (${cfg.numHeads})`);
  }
  return cfg;
}

function identify(f: JsonFields): { architecture: string; family: ModelFamily } {
  if (f.has('architectures')) {
    const archs = f.obj.architectures;
    if (!Array.isArray(archs) || !archs.every((a) => typeof a === 'string')) {
      f.fail('architectures', 'must be a list of class names');
    }
    const known = (archs as string[]).find((a) => BY_ARCHITECTURE.has(a));
    if (!known) {
      f.fail('architectures', `names ${JSON.stringify(archs)}, none of which is supported (${supportedArchitectures().join(', ')})`);
    }
    return { architecture: known, family: BY_ARCHITECTURE.get(known)! };
  }
  const type = f.str('model_type');
  const family = BY_MODEL_TYPE.get(type);
  if (!family) f.fail('model_type', `"${type}" is not supported (${[...BY_MODEL_TYPE.keys()].join(', ')})`);
  return { architecture: family.architectures[0], family };
}

/** Every tensor of a checkpoint with this config and where it goes (optional ones included: see WeightSpec). */
export function weightTable(cfg: ModelConfig): WeightSpec[] {
  return familyOf(cfg).weights(cfg);
}

/**
 * The tensors a checkpoint of this config holds (names as HF writes them, shapes, dummy fill), optional ones left
 * out: what dummy weights fabricate.
 *
 * @example
 *   checkpointTensors(cfg)[0]; // { name: 'model.embed_tokens.weight', shape: [128256, 2048], init: 'uniform', ... }
 */
export function checkpointTensors(cfg: ModelConfig): TensorSpec[] {
  return weightTable(cfg).filter((s) => !s.optional);
}

/**
 * Parameter count of the checkpoint (a tied LM head counted once), e.g. 1.236e9 for Llama-3.2-1B.
 *
 * @example
 *   paramCount(parseModelConfig(llama32_1b)); // 1_235_814_400
 */
export function paramCount(cfg: ModelConfig): number {
  let n = 0;
  for (const t of checkpointTensors(cfg)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}
