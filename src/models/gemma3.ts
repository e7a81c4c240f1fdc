/**
 * Gemma 3's text model (Gemma3ForCausalLM, model_type gemma3_text): Gemma 2 (gemma2.ts) with per-head q/k RMSNorm
 * (1 + w), no soft-capping, and two rotary tables: sliding layers rotate with the local base
 * (`rope_local_base_freq`, 10000), global layers with `rope_theta` (1e6) and its scaling (linear x8 on gemma-3-4b and
 * up). Layers slide except every `sliding_window_pattern`-th (6), or as `layer_types` says. transformers 5 writes the
 * two rope configurations as `rope_parameters.{full_attention, sliding_attention}`.
 */
import { JsonFields } from '../config/json-fields.js';
import type { ConfigBody, LayerType } from '../config/model-config.js';
import { parseRope, type RopeConfig } from '../config/rope.js';
import type { ModelFamily } from './family.js';
import { gemmaLayerKinds, gemmaWeights, readGemmaCommon } from './gemma2.js';

/** The rotary configuration of one layer kind, from either config form. */
function gemma3Rope(f: JsonFields, kind: 'full_attention' | 'sliding_attention', headDim: number, maxPos: number): RopeConfig {
  const params = f.object('rope_parameters');
  const perKind = params?.object(kind);
  if (perKind) return parseRope(new JsonFields({ rope_parameters: perKind.obj }, f.file), headDim, maxPos);
  if (kind === 'full_attention') return parseRope(f, headDim, maxPos, 1e6);
  // 4.x: local layers use rope_local_base_freq and no scaling.
  return parseRope(new JsonFields({ rope_theta: f.positiveNum('rope_local_base_freq', 10000) }, f.file), headDim, maxPos);
}

function readGemma3(f: JsonFields): ConfigBody {
  const body = readGemmaCommon(f, 1e6, (g, headDim, maxPos) => gemma3Rope(g, 'full_attention', headDim, maxPos));
  const window = f.has('sliding_window') ? f.int('sliding_window') : 4096;
  const pattern = f.int('sliding_window_pattern', 6);
  const sliding = gemmaLayerKinds(f, body.numLayers, (l) => (l + 1) % pattern !== 0);
  const layerTypes: LayerType[] = sliding.map((s) => ({ slidingWindow: s ? window : null, rope: s ? 'local' : 'global' }));
  return {
    ...body,
    qkNorm: true,
    layerTypes,
    localRope: gemma3Rope(f, 'sliding_attention', body.headDim, body.maxModelLen),
  };
}

export const gemma3: ModelFamily = {
  name: 'gemma3',
  architectures: ['Gemma3ForCausalLM'],
  modelTypes: ['gemma3_text'],
  readConfig: readGemma3,
  weights: gemmaWeights,
};
