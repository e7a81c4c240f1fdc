/**
 * SmolLM3 (SmolLM3ForCausalLM): Llama with NoPE layers: `no_rope_layers[l]` is 1 where layer l rotates q and k and 0
 * where it uses no positions at all (by default every `no_rope_layer_interval`-th layer, 4: layers 3, 7, ...).
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';
import { qwenSlidingWindow } from './qwen2.js';

function readSmolLM3(f: JsonFields): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 32768, eps: 1e-6, theta: 2e6, qkvBias: 'attention_bias', mlpBias: true, slidingWindow: qwenSlidingWindow });
  const n = body.numLayers;
  let useRope: number[];
  if (f.has('no_rope_layers')) {
    const v = f.obj.no_rope_layers;
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => x === 0 || x === 1)) f.fail('no_rope_layers', `must list 0 or 1 for each of the ${n} layers`);
    useRope = v as number[];
  } else {
    const interval = f.int('no_rope_layer_interval', 4);
    useRope = Array.from({ length: n }, (_, l) => ((l + 1) % interval !== 0 ? 1 : 0));
  }
  return { ...body, layerTypes: useRope.map((r) => ({ slidingWindow: body.slidingWindow, rope: r === 1 ? 'global' : null })) };
}

export const smollm3: ModelFamily = {
  name: 'smollm3',
  architectures: ['SmolLM3ForCausalLM'],
  modelTypes: ['smollm3'],
  readConfig: readSmolLM3,
  weights: (cfg) => llamaWeights(cfg),
};
