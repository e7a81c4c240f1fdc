/**
 * Rotary position embedding parameters read from config.json, and the inverse frequencies they imply.
 *
 * Both config forms are read: transformers 4.x (`rope_theta`, `partial_rotary_factor` and `rope_scaling` with
 * `rope_type` or the older `type`) and 5.x (`rope_parameters` holding all of them). The frequency math follows
 * transformers' `modeling_rope_utils.py`, rounded to float32 after every operation as torch does on float32
 * tensors, so `ropeInvFreq` agrees with HF's `inv_freq` buffer (to 1 ulp where torch's powf rounds differently).
 */
import { JsonFields } from './json-fields.js';

/** How positions beyond the trained context are handled (`rope_type`); null scaling means plain RoPE. */
export type RopeScaling =
  /** inv_freq / factor (position interpolation). */
  | { type: 'linear'; factor: number }
  /** NTK-aware base growth with sequence length; at lengths <= maxPositionEmbeddings it is plain RoPE. */
  | { type: 'dynamic'; factor: number; maxPositionEmbeddings: number }
  /** Llama 3.1: low frequencies / factor, high ones kept, a smooth ramp between (by wavelength). */
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  /** YaRN: per-dimension blend of interpolated and extrapolated frequencies, and a cos/sin magnitude scale. */
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      /** Floor/ceil the correction range (HF `truncate`, default true). */
      truncate: boolean;
      /** Explicit cos/sin scale; null derives it from factor (and mscale / mscaleAllDim, DeepSeek style). */
      attentionFactor: number | null;
      mscale: number | null;
      mscaleAllDim: number | null;
    }
  /** Phi-3 LongRoPE (`su` in older configs): per-dimension factors, short below the original context, long above. */
  | {
      type: 'longrope';
      shortFactor: number[];
      longFactor: number[];
      originalMaxPositionEmbeddings: number;
      /** max_position_embeddings / original, used for the default attention factor. */
      factor: number;
      attentionFactor: number | null;
    };

export interface RopeConfig {
  /** Base of the geometric frequency ladder (`rope_theta`). */
  theta: number;
  /** Leading dimensions of each head that rotate: int(headDim * partial_rotary_factor), even. The rest pass through. */
  rotaryDim: number;
  scaling: RopeScaling | null;
  /** Multiplier on cos and sin (HF `attention_scaling`): 1 except for yarn and longrope. */
  attentionScaling: number;
}

/**
 * Reads the rope parameters from either config form. `defaultTheta` is the architecture's HF default.
 * `maxPositionEmbeddings` is the model's max_position_embeddings (used by dynamic, yarn and longrope).
 */
export function parseRope(f: JsonFields, headDim: number, maxPositionEmbeddings: number, defaultTheta = 10000): RopeConfig {
  // 5.x: one `rope_parameters` object; 4.x: `rope_theta` + `partial_rotary_factor` at the top, `rope_scaling` apart.
  const params = f.object('rope_parameters');
  if (params && !params.has('rope_type') && !params.has('rope_theta') && params.has('full_attention')) {
    params.fail('full_attention', 'is a per-layer-type rope configuration, which is not supported');
  }
  const base = params ?? f;
  const scalingSrc = params ?? f.object('rope_scaling');
  const theta = base.positiveNum('rope_theta', params ? undefined : defaultTheta);
  const prfSrc = base.has('partial_rotary_factor') ? base : f;
  const prf = prfSrc.positiveNum('partial_rotary_factor', 1);
  if (prf > 1) prfSrc.fail('partial_rotary_factor', `must be in (0, 1], got ${prf}`);
  // Python's int(head_dim * factor): truncation.
  const rotaryDim = Math.floor(headDim * prf);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    prfSrc.fail('partial_rotary_factor', `gives ${rotaryDim} rotary dimensions for head_dim ${headDim}; it must be even and >= 2`);
  }
  const scaling = scalingSrc ? parseScaling(scalingSrc, f, maxPositionEmbeddings) : null;
  const rope: RopeConfig = { theta, rotaryDim, scaling, attentionScaling: 1 };
  rope.attentionScaling = attentionScalingOf(rope);
  return rope;
}

function parseScaling(s: JsonFields, top: JsonFields, maxPos: number): RopeScaling | null {
  const typeKey = s.firstKey('rope_type', 'type');
  const type = typeKey ? s.str(typeKey) : 'default';
  switch (type) {
    case 'default':
      return null;
    case 'linear':
      return { type, factor: s.positiveNum('factor') };
    case 'dynamic':
      return { type, factor: s.positiveNum('factor'), maxPositionEmbeddings: maxPos };
    case 'llama3': {
      const r: RopeScaling = {
        type,
        factor: s.positiveNum('factor'),
        lowFreqFactor: s.positiveNum('low_freq_factor'),
        highFreqFactor: s.positiveNum('high_freq_factor'),
        originalMaxPositionEmbeddings: s.int('original_max_position_embeddings'),
      };
      if (r.highFreqFactor <= r.lowFreqFactor) s.fail('high_freq_factor', `must exceed low_freq_factor (${r.lowFreqFactor})`);
      return r;
    }
    case 'yarn':
      // The config's factor is used as given (transformers >= 4.56 and vLLM), not max_pos / original.
      return {
        type,
        factor: s.positiveNum('factor'),
        originalMaxPositionEmbeddings: s.int('original_max_position_embeddings', maxPos),
        betaFast: s.positiveNum('beta_fast', 32),
        betaSlow: s.positiveNum('beta_slow', 1),
        truncate: s.bool('truncate', true),
        attentionFactor: s.optNum('attention_factor') ?? null,
        mscale: s.optNum('mscale') ?? null,
        mscaleAllDim: s.optNum('mscale_all_dim') ?? null,
      };
    case 'su':
    case 'longrope': {
      // Phi-3 keeps original_max_position_embeddings at the top level; 5.x moves it into rope_parameters.
      const origSrc = top.has('original_max_position_embeddings') ? top : s;
      const original = origSrc.has('original_max_position_embeddings') ? origSrc.int('original_max_position_embeddings') : null;
      return {
        type: 'longrope',
        shortFactor: s.numList('short_factor'),
        longFactor: s.numList('long_factor'),
        originalMaxPositionEmbeddings: original ?? maxPos,
        factor: original ? maxPos / original : s.positiveNum('factor', 1),
        attentionFactor: s.optNum('attention_factor') ?? null,
      };
    }
    default:
      return s.fail(typeKey!, `names rope type "${type}", which is not supported (default, linear, dynamic, llama3, yarn, longrope)`);
  }
}

const f32 = Math.fround;

function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

function attentionScalingOf(rope: RopeConfig): number {
  const s = rope.scaling;
  if (s?.type === 'yarn') {
    if (s.attentionFactor !== null) return s.attentionFactor;
    if (s.mscale && s.mscaleAllDim) return yarnMscale(s.factor, s.mscale) / yarnMscale(s.factor, s.mscaleAllDim);
    return yarnMscale(s.factor);
  }
  if (s?.type === 'longrope') {
    if (s.attentionFactor !== null) return s.attentionFactor;
    return s.factor <= 1 ? 1 : Math.sqrt(1 + Math.log(s.factor) / Math.log(s.originalMaxPositionEmbeddings));
  }
  return 1;
}

/** base^(2i/dim) for i < dim/2, in float32 as torch computes `base ** (arange(0, dim, 2).float() / dim)`. */
function posFreqs(base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const b = f32(base);
  for (let i = 0; i < out.length; i++) out[i] = f32(Math.pow(b, f32((2 * i) / dim)));
  return out;
}

/**
 * The rotary inverse frequencies [rotaryDim / 2] (float32), as HF's `inv_freq` buffer: theta_i = theta^(-2i/d),
 * then the scaling's adjustment. `seqLen` matters only for dynamic (NTK base grows beyond the trained length) and
 * longrope (long factors beyond the original context); omit it for the values at load time.
 *
 * @example
 *   const cfg = parseModelConfig(await source.readText('config.json'));
 *   const invFreq = ropeInvFreq(cfg); // Float32Array(cfg.rope.rotaryDim / 2); angle(pos, i) = pos * invFreq[i]
 */
export function ropeInvFreq(cfg: { rope: RopeConfig | null }, seqLen?: number): Float32Array {
  const rope = cfg.rope;
  if (!rope) throw new RangeError('ropeInvFreq: this model has no rotary embedding (learned positions)');
  const dim = rope.rotaryDim;
  const s = rope.scaling;
  if (s?.type === 'dynamic' && seqLen !== undefined && seqLen > s.maxPositionEmbeddings) {
    // HF _compute_dynamic_ntk_parameters: the base grows, computed in double precision.
    const base = rope.theta * ((s.factor * seqLen) / s.maxPositionEmbeddings - (s.factor - 1)) ** (dim / (dim - 2));
    return invert(posFreqs(base, dim));
  }
  if (s?.type === 'longrope') {
    const long = seqLen !== undefined && seqLen > s.originalMaxPositionEmbeddings;
    const ext = long ? s.longFactor : s.shortFactor;
    if (ext.length !== dim / 2) {
      throw new RangeError(`longrope ${long ? 'long' : 'short'}_factor has ${ext.length} entries, expected rotaryDim/2 = ${dim / 2}`);
    }
    const p = posFreqs(rope.theta, dim);
    return p.map((v, i) => f32(1 / f32(f32(ext[i]) * v)));
  }
  if (s?.type === 'yarn') return yarnInvFreq(rope.theta, dim, s);
  const inv = invert(posFreqs(rope.theta, dim));
  if (s?.type === 'linear') return inv.map((v) => f32(v / f32(s.factor)));
  if (s?.type === 'llama3') return llama3InvFreq(inv, s);
  return inv;
}

/** HF's `attention_scaling` (multiplier on cos/sin): 1 unless yarn or longrope. */
export function ropeAttentionScaling(cfg: { rope: RopeConfig | null }): number {
  return cfg.rope?.attentionScaling ?? 1;
}

function invert(p: Float32Array): Float32Array {
  return p.map((v) => f32(1 / v));
}

/**
 * Llama 3.1 (HF _compute_llama3_parameters): wavelength 2*pi/f. Below old_len/high_freq_factor keep f; above
 * old_len/low_freq_factor use f/factor; between, (1-s)*f/factor + s*f with s = (old_len/wavelen - low)/(high - low).
 */
function llama3InvFreq(inv: Float32Array, s: Extract<RopeScaling, { type: 'llama3' }>): Float32Array {
  const factor = f32(s.factor);
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const twoPi = f32(2 * Math.PI);
  return inv.map((f) => {
    const wavelen = f32(twoPi / f);
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f32(f / factor);
    const smooth = f32(f32(f32(s.originalMaxPositionEmbeddings / wavelen) - f32(s.lowFreqFactor)) / f32(s.highFreqFactor - s.lowFreqFactor));
    return f32(f32(f32(f32(1 - smooth) * f) / factor) + f32(smooth * f));
  });
}

/** YaRN (HF _compute_yarn_parameters): blend interpolation (f/factor) and extrapolation (f) by a linear ramp. */
function yarnInvFreq(theta: number, dim: number, s: Extract<RopeScaling, { type: 'yarn' }>): Float32Array {
  const corrDim = (rot: number) =>
    (dim * Math.log(s.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = corrDim(s.betaFast);
  let high = corrDim(s.betaSlow);
  if (s.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001; // HF: prevent a zero-width ramp
  const p = posFreqs(theta, dim);
  const factor = f32(s.factor);
  return p.map((pf, i) => {
    const extrap = f32(1 / pf);
    const interp = f32(1 / f32(factor * pf));
    const ramp = Math.min(1, Math.max(0, f32(f32(i - f32(low)) / f32(high - low))));
    const extrapFactor = f32(1 - ramp);
    return f32(f32(interp * f32(1 - extrapFactor)) + f32(extrap * extrapFactor));
  });
}
