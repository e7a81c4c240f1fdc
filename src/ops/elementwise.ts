/** Elementwise ops: activations, gated activations (SwiGLU, GeGLU), final logit scaling, f16 conversion. */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, sameStart, type Tensor } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import activationLib from '../../shaders/lib/activation.wgsl';
import actSource from '../../shaders/act.wgsl';
import actInplaceSource from '../../shaders/act.inplace.wgsl';
import gatedSource from '../../shaders/gated_act.wgsl';
import toHalfSource from '../../shaders/to_half.wgsl';
import softcapLib from '../../shaders/lib/softcap.wgsl';
import scaleSoftcapSource from '../../shaders/scale_softcap.wgsl';
import { expectTensor, grid } from './common.js';

const ELEMENTWISE_WG = 256;

/** act.wgsl, act.inplace.wgsl: elements. */
const ELEMENT_PARAMS = paramsStruct({ n: 'u32' });
/** gated_act.wgsl: n = T I outputs, I per token. */
const GATED_PARAMS = paramsStruct({ n: 'u32', I: 'u32' });
/** scale_softcap.wgsl. */
const SCALE_SOFTCAP_PARAMS = paramsStruct({ n: 'u32', divisor: 'f32', cap: 'f32' });
/** to_half.wgsl: groups of 8 elements. */
const TO_HALF_PARAMS = paramsStruct({ n8: 'u32' });

/** Activation names as in HF configs (`hidden_act`), with the ACT code of shaders/lib/activation.wgsl. */
const ACT_CODES = { relu: 0, gelu: 1, gelu_new: 2, gelu_tanh: 2, gelu_pytorch_tanh: 2, silu: 3 } as const;
export type Activation = keyof typeof ACT_CODES;

/** The ACT override of shaders/lib/activation.wgsl for an activation name. */
export function actCode(act: string): number {
  const code = (ACT_CODES as Record<string, number>)[act];
  if (code === undefined) throw new Error(`unknown activation '${act}' (known: ${Object.keys(ACT_CODES).join(', ')})`);
  return code;
}

/**
 * out[i] = act(x[i]) for i < n; in place allowed. gelu is the exact (erf) form, gelu_new the tanh form.
 *
 * @example
 * act(rec, mlpHidden, mlpHidden, T * I, 'gelu_new'); // GPT-2
 */
export function act(rec: Recorder, x: Tensor, out: Tensor, n: number, act: 'relu' | 'gelu' | 'gelu_new' | Activation): void {
  if (n === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', n, 'act x');
  expectTensor(out, 'f32', n, 'act out');
  const code = actCode(act);
  const inplace = sameStart(x, out);
  const key = `act${inplace ? '.inplace' : ''}.${code}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${threadLib}\n${activationLib}\n${inplace ? actInplaceSource : actSource}`,
    bindings: inplace ? ['write'] : ['read', 'write'],
    params: ELEMENT_PARAMS,
    constants: { WG: ELEMENTWISE_WG, ACT: code },
  }));
  const [gx, gy] = grid(ctx, Math.ceil(n / ELEMENTWISE_WG));
  rec.run(kernel, { n }, inplace ? [bindTensor(ctx, out)] : [bindTensor(ctx, x), bindTensor(ctx, out)], gx, gy);
}

/**
 * out[t, i] = act(x[t, i]) * x[t, I + i] for t < T, i < I: x is the fused gate | up projection.
 *
 * @param x    f32 [T, 2 I]
 * @param out  f32 [T, I]
 * @example
 * gatedAct(rec, gateUp, mlpHidden, T, 8192, 'silu'); // Llama's SwiGLU
 */
export function gatedAct(
  rec: Recorder,
  x: Tensor,
  out: Tensor,
  T: number,
  I: number,
  act: 'silu' | 'gelu' | 'gelu_tanh' | Activation,
): void {
  if (T === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', T * 2 * I, 'gatedAct x');
  expectTensor(out, 'f32', T * I, 'gatedAct out');
  const code = actCode(act);
  const key = `gated_act.${code}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${threadLib}\n${activationLib}\n${gatedSource}`,
    bindings: ['read', 'write'],
    params: GATED_PARAMS,
    constants: { WG: ELEMENTWISE_WG, ACT: code },
  }));
  const [gx, gy] = grid(ctx, Math.ceil((T * I) / ELEMENTWISE_WG));
  rec.run(kernel, { n: T * I, I }, [bindTensor(ctx, x), bindTensor(ctx, out)], gx, gy);
}

/**
 * The LM head's logits scaled and soft-capped in place: x[i] = cap tanh((x[i] / divisor) / cap) for i < n, or
 * x[i] / divisor without a cap (Granite's `logits_scaling` is the divisor, Gemma 2's `final_logit_softcapping` the
 * cap; both as in HF: a division, then the cap).
 *
 * @param x  f32 [S, V] (n = S V)
 * @example
 * scaleSoftcap(rec, logits, S * V, { softcap: 30 }); // Gemma 2
 * scaleSoftcap(rec, logits, S * V, { divisor: 8 }); // Granite 3
 */
export function scaleSoftcap(rec: Recorder, x: Tensor, n: number, opts: { divisor?: number; softcap?: number }): void {
  const divisor = opts.divisor ?? 1;
  const cap = opts.softcap ?? 0;
  if (!(Number.isFinite(divisor) && divisor !== 0)) throw new Error(`scaleSoftcap: divisor ${divisor} must be a finite non-zero number`);
  if (!(cap >= 0 && Number.isFinite(cap))) throw new Error(`scaleSoftcap: softcap ${cap} must be a finite number >= 0`);
  if (n === 0 || (divisor === 1 && cap === 0)) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', n, 'scaleSoftcap x');
  const kernel = ctx.pipelines.kernel('scale_softcap', () => ({
    name: 'scale_softcap',
    code: `${threadLib}\n${softcapLib}\n${scaleSoftcapSource}`,
    bindings: ['write'],
    params: SCALE_SOFTCAP_PARAMS,
    constants: { WG: ELEMENTWISE_WG },
  }));
  rec.run(kernel, { n, divisor, cap }, [bindTensor(ctx, x)], ...grid(ctx, Math.ceil(n / ELEMENTWISE_WG)));
}

/**
 * out = f16(x) for n elements (n % 8 == 0): the tensor-core linear's input in half the bytes.
 *
 * @param x    f32 [n]
 * @param out  f16 [>= n]
 * @example
 * toHalf(rec, normed, xHalf, T * H);
 */
export function toHalf(rec: Recorder, x: Tensor, out: Tensor, n: number): void {
  if (n % 8 !== 0) throw new Error(`toHalf: ${n} elements are not a multiple of 8`);
  if (n === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', n, 'toHalf x');
  expectTensor(out, 'f16', n, 'toHalf out');
  const kernel = ctx.pipelines.kernel('to_half', () => ({
    name: 'to_half',
    code: `${threadLib}\n${toHalfSource}`,
    bindings: ['read', 'write'],
    params: TO_HALF_PARAMS,
    constants: { WG: ELEMENTWISE_WG },
  }));
  rec.run(kernel, { n8: n / 8 }, [bindTensor(ctx, x), bindTensor(ctx, out)], ...grid(ctx, Math.ceil(n / 8 / ELEMENTWISE_WG)));
}
