// The CPU backend's elementwise and attention kernels (src/cpu/cpu-decoder.ts calls them in the decoder's order).
// Every buffer is f32 unless said; row strides (ld*) are in elements.

import { exp4 } from '../sampler/vec';
import { hsum } from './blocks';

/**
 * RMSNorm, HF's: out[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * w[i], for `rows` rows of H (f32 sums).
 * out may be x.
 */
export function rmsNorm(out: usize, ldo: i32, x: usize, ldx: i32, w: usize, rows: i32, H: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + ((<usize>r * ldx) << 2);
    const or = out + ((<usize>r * ldo) << 2);
    let a = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= H; i += 4) {
      const v = v128.load(xr + (<usize>i << 2));
      a = f32x4.add(a, f32x4.mul(v, v));
    }
    let ss = hsum(a);
    for (; i < H; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      ss += v * v;
    }
    const inv: f32 = 1 / Mathf.sqrt(ss / <f32>H + eps);
    for (let j = 0; j < H; j++) {
      const o = <usize>j << 2;
      store<f32>(or + o, load<f32>(xr + o) * inv * load<f32>(w + o));
    }
  }
}

/** LayerNorm: out[r, i] = (x[r, i] - mean) / sqrt(var + eps) * w[i] + b[i] (biased variance, as torch). out may be x. */
export function layerNorm(out: usize, ldo: i32, x: usize, ldx: i32, w: usize, b: usize, rows: i32, H: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + ((<usize>r * ldx) << 2);
    const or = out + ((<usize>r * ldo) << 2);
    let sum: f32 = 0;
    for (let i = 0; i < H; i++) sum += load<f32>(xr + (<usize>i << 2));
    const mean = sum / <f32>H;
    let sq: f32 = 0;
    for (let i = 0; i < H; i++) {
      const d = load<f32>(xr + (<usize>i << 2)) - mean;
      sq += d * d;
    }
    const inv: f32 = 1 / Mathf.sqrt(sq / <f32>H + eps);
    for (let i = 0; i < H; i++) {
      const o = <usize>i << 2;
      store<f32>(or + o, (load<f32>(xr + o) - mean) * inv * load<f32>(w + o) + load<f32>(b + o));
    }
  }
}

/**
 * Rotary embedding (NeoX / HF rotate_half) in place on `heads` consecutive heads of D per token (q then k heads of
 * a qkv row): with a = positions[t] invFreq[i] (f32 product, as torch), c = cos(a) scaling, s = sin(a) scaling,
 *   x'[i] = x[i] c - x[i + R/2] s,  x'[i + R/2] = x[i + R/2] c + x[i] s   (i < R/2); dims >= R unchanged.
 * @param cs  scratch f32 [R] (cos, sin of one token)
 */
export function rope(qkv: usize, ld: i32, positions: usize, invFreq: usize, T: i32, heads: i32, D: i32, R: i32, scaling: f32, cs: usize): void {
  const half = R >> 1;
  for (let t = 0; t < T; t++) {
    const pos = <f32>load<i32>(positions + (<usize>t << 2));
    for (let i = 0; i < half; i++) {
      const a: f32 = pos * load<f32>(invFreq + (<usize>i << 2));
      store<f32>(cs + (<usize>i << 2), <f32>Math.cos(<f64>a) * scaling);
      store<f32>(cs + (<usize>(half + i) << 2), <f32>Math.sin(<f64>a) * scaling);
    }
    const row = qkv + ((<usize>t * ld) << 2);
    for (let h = 0; h < heads; h++) {
      const p = row + ((<usize>h * D) << 2);
      for (let i = 0; i < half; i++) {
        const c = load<f32>(cs + (<usize>i << 2));
        const s = load<f32>(cs + (<usize>(half + i) << 2));
        const x0 = load<f32>(p + (<usize>i << 2));
        const x1 = load<f32>(p + (<usize>(i + half) << 2));
        store<f32>(p + (<usize>i << 2), x0 * c - x1 * s);
        store<f32>(p + (<usize>(i + half) << 2), x1 * c + x0 * s);
      }
    }
  }
}

/** x / (1 + e^-x). */
@inline function silu(x: f32): f32 {
  return x / (1 + Mathf.exp(-x));
}

/** erf from Numerical Recipes' erfc (a Chebyshev fit times exp(-z^2)): fractional error < 1.2e-7 everywhere. */
function erf(x: f32): f32 {
  const z = Mathf.abs(x);
  const t: f32 = 1 / (1 + 0.5 * z);
  const r: f32 =
    t *
    Mathf.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

/** gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). */
@inline function gelu(x: f32): f32 {
  return 0.5 * x * (1 + erf(x * 0.70710678118654752));
}

/** HF gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x sigmoid(2 y). */
@inline function geluTanh(x: f32): f32 {
  const y: f32 = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return x / (1 + Mathf.exp(-2 * y));
}

/**
 * 4 lanes of x / (1 + e^z), z = -x (silu) or -2 y with y = sqrt(2/pi) (x + 0.044715 x^3) (HF gelu_new: x sigmoid(2 y));
 * z clamped to 88 for exp4 (e^88 ~ 1.7e38 stands for anything larger: the quotient is ~0 either way).
 */
@inline function activateV(act: i32, x: v128): v128 {
  let z = f32x4.neg(x);
  if (act == ACT_GELU_TANH) z = f32x4.mul(v128.load(ACT_CONSTS, 32), f32x4.add(x, f32x4.mul(v128.load(ACT_CONSTS, 48), f32x4.mul(x, f32x4.mul(x, x)))));
  return f32x4.div(x, f32x4.add(v128.load(ACT_CONSTS), exp4(f32x4.pmin(z, v128.load(ACT_CONSTS, 16)))));
}

/** activateV's constants in all 4 lanes (loaded: see exp4's EXP_CONSTS): 1, 88, -2 sqrt(2 / pi), 0.044715. */
const ACT_CONSTS: usize = memory.data<f32>([
  1, 1, 1, 1,
  88, 88, 88, 88,
  -1.5957691216057308, -1.5957691216057308, -1.5957691216057308, -1.5957691216057308,
  0.044715, 0.044715, 0.044715, 0.044715,
], 16);

export const ACT_SILU: i32 = 0;
export const ACT_GELU: i32 = 1;
export const ACT_GELU_TANH: i32 = 2;
export const ACT_RELU: i32 = 3;

@inline function activate(act: i32, x: f32): f32 {
  if (act == ACT_SILU) return silu(x);
  if (act == ACT_GELU) return gelu(x);
  if (act == ACT_GELU_TANH) return geluTanh(x);
  return x > 0 ? x : 0;
}

/** Gated MLP: out[t, i] = act(u[t, i]) * u[t, I + i] (gate rows then up rows of the fused projection). */
export function gatedAct(act: i32, out: usize, ldo: i32, u: usize, ldu: i32, T: i32, I: i32): void {
  for (let t = 0; t < T; t++) {
    const ut = u + ((<usize>t * ldu) << 2);
    const ot = out + ((<usize>t * ldo) << 2);
    let i = 0;
    if (act == ACT_SILU || act == ACT_GELU_TANH) {
      for (; i + 4 <= I; i += 4) {
        const o = <usize>i << 2;
        v128.store(ot + o, f32x4.mul(activateV(act, v128.load(ut + o)), v128.load(ut + o + (<usize>I << 2))));
      }
    }
    for (; i < I; i++) {
      const o = <usize>i << 2;
      store<f32>(ot + o, activate(act, load<f32>(ut + o)) * load<f32>(ut + o + (<usize>I << 2)));
    }
  }
}

/** Plain activation in place over n values. */
export function actInPlace(act: i32, x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, activate(act, load<f32>(p)));
  }
}

/** out[t, n] += b[n] for t < T, n < N. */
export function addBias(out: usize, ldo: i32, b: usize, T: i32, N: i32): void {
  for (let t = 0; t < T; t++) {
    const ot = out + ((<usize>t * ldo) << 2);
    for (let n = 0; n < N; n++) {
      const o = <usize>n << 2;
      store<f32>(ot + o, load<f32>(ot + o) + load<f32>(b + o));
    }
  }
}

/** y[i] = y[i] * a + x[i] * b over n values (embedding scale, residual adds of post-norm blocks). */
export function axpby(y: usize, a: f32, x: usize, b: f32, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) * a + load<f32>(x + o) * b);
  }
}

/** x = cap tanh(x / cap) over n values (soft-capped logits), tanh as in lib/softcap.wgsl (no overflow). */
export function softcap(x: usize, n: i32, cap: f32): void {
  for (let i = 0; i < n; i++) {
    const p = x + (<usize>i << 2);
    const y = load<f32>(p) / cap;
    const e = Mathf.exp(-2 * Mathf.abs(y));
    const th: f32 = ((1 - e) / (1 + e)) * (y < 0 ? -1 : 1);
    store<f32>(p, cap * th);
  }
}

/**
 * out[i] = (q . k_i) * scale for the 4 keys k_i = k + i stride (D a multiple of 4): dotD's sums, 4 at a time for their
 * independent chains of additions.
 */
@inline function dot4D(out: usize, q: usize, k: usize, stride: usize, D: i32, scale: f32): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  const k1 = k + stride, k2 = k1 + stride, k3 = k2 + stride;
  for (let o: usize = 0; o < (<usize>D << 2); o += 16) {
    const x = v128.load(q + o);
    a0 = f32x4.add(a0, f32x4.mul(x, v128.load(k + o)));
    a1 = f32x4.add(a1, f32x4.mul(x, v128.load(k1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(x, v128.load(k2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(x, v128.load(k3 + o)));
  }
  store<f32>(out, hsum(a0) * scale);
  store<f32>(out, hsum(a1) * scale, 4);
  store<f32>(out, hsum(a2) * scale, 8);
  store<f32>(out, hsum(a3) * scale, 12);
}

/**
 * Copies each token's new key and value (f32 [n] each, at float kOff and kOff + n of qkv row t, rows ldq floats
 * apart) into cache slot slots[t] of kCache / vCache (f32 [slots, n]); tokens of slot < 0 are skipped.
 */
export function writeKv(kCache: usize, vCache: usize, qkv: usize, ldq: i32, kOff: i32, n: i32, slots: usize, T: i32): void {
  const bytes = <usize>n << 2;
  for (let t = 0; t < T; t++) {
    const slot = load<i32>(slots + (<usize>t << 2));
    if (slot < 0) continue;
    const src = qkv + ((<usize>t * ldq + <usize>kOff) << 2);
    memory.copy(kCache + <usize>slot * bytes, src, bytes);
    memory.copy(vCache + <usize>slot * bytes, src + bytes, bytes);
  }
}

/** q . k over D floats. */
@inline function dotD(q: usize, k: usize, D: i32): f32 {
  let a = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(q + (<usize>i << 2)), v128.load(k + (<usize>i << 2))));
  let s = hsum(a);
  for (; i < D; i++) s += load<f32>(q + (<usize>i << 2)) * load<f32>(k + (<usize>i << 2));
  return s;
}

/** out[0 .. D) += p * v[0 .. D). */
@inline function axpyD(out: usize, p: f32, v: usize, D: i32): void {
  const pv = f32x4.splat(p);
  let i = 0;
  for (; i + 4 <= D; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(out + o), f32x4.mul(pv, v128.load(v + o))));
  }
  for (; i < D; i++) store<f32>(out + (<usize>i << 2), load<f32>(out + (<usize>i << 2)) + p * load<f32>(v + (<usize>i << 2)));
}

/**
 * out[0 .. 32) = inv sum_j p_j v_j[0 .. 32) over the keys j = lo .. pos (p_j at p + 4 (j - lo)), the 8 sums held in
 * registers: the additions of axpyD over a zeroed out, in the same order, so the same bits.
 */
@inline function weightedSum32(out: usize, p: usize, table: usize, lo: i32, pos: i32, blockSize: i32, rowB: usize, v: usize, inv: f32): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  let j = lo;
  while (j <= pos) {
    const b = j / blockSize;
    const end = min(pos + 1, (b + 1) * blockSize);
    let vj = v + (<usize>load<i32>(table + (<usize>b << 2)) * blockSize + (j - b * blockSize)) * rowB;
    for (; j < end; j++) {
      const pv = f32x4.splat(load<f32>(p));
      a0 = f32x4.add(a0, f32x4.mul(pv, v128.load(vj)));
      a1 = f32x4.add(a1, f32x4.mul(pv, v128.load(vj, 16)));
      a2 = f32x4.add(a2, f32x4.mul(pv, v128.load(vj, 32)));
      a3 = f32x4.add(a3, f32x4.mul(pv, v128.load(vj, 48)));
      a4 = f32x4.add(a4, f32x4.mul(pv, v128.load(vj, 64)));
      a5 = f32x4.add(a5, f32x4.mul(pv, v128.load(vj, 80)));
      a6 = f32x4.add(a6, f32x4.mul(pv, v128.load(vj, 96)));
      a7 = f32x4.add(a7, f32x4.mul(pv, v128.load(vj, 112)));
      p += 4;
      vj += rowB;
    }
  }
  const s = f32x4.splat(inv);
  v128.store(out, f32x4.mul(a0, s));
  v128.store(out, f32x4.mul(a1, s), 16);
  v128.store(out, f32x4.mul(a2, s), 32);
  v128.store(out, f32x4.mul(a3, s), 48);
  v128.store(out, f32x4.mul(a4, s), 64);
  v128.store(out, f32x4.mul(a5, s), 80);
  v128.store(out, f32x4.mul(a6, s), 96);
  v128.store(out, f32x4.mul(a7, s), 112);
}

/**
 * Paged causal attention for T query tokens of many sequences:
 *   out[t, h] = sum_j softmax_j(s_j) v_j,  s_j = softcap(q[t, h] . k_j * scale), j over key positions
 *   lo(pos) .. pos of token t's sequence (lo = pos + 1 - window with a sliding window, else 0),
 * keys and values read from the paged cache through the sequence's block table (GQA: head h reads kv head
 * h / (nH / nKv)). Three passes per head: the scores, then their exponentials (in place, exp4) and sum, then the
 * values' weighted sum, 32 dimensions at a time in registers (weightedSum32; a rest of D % 32 through memory), each key's
 * cache slot found once per block of the table.
 * @param qkv         f32 [T, ldq]: q heads [nH, D] at the start of each row
 * @param kCache      f32 [numBlocks, blockSize, nKv, D]; vCache likewise
 * @param tables      i32 [numSeqs, maxBlocks]: block tables
 * @param seqIdx      i32 [T]: row of each token's sequence in tables
 * @param positions   i32 [T]
 * @param out         f32 [T, nH D]
 * @param scores      scratch f32 [longest context]
 */
export function pagedAttention(
  out: usize, qkv: usize, ldq: i32, kCache: usize, vCache: usize, tables: usize, maxBlocks: i32, seqIdx: usize, positions: usize,
  T: i32, nH: i32, nKv: i32, D: i32, blockSize: i32, scale: f32, cap: f32, window: i32, scores: usize,
): void {
  const group = nH / nKv;
  const rowB = <usize>(nKv * D) << 2; // bytes of one cache slot
  const D32 = D & ~31;
  for (let t = 0; t < T; t++) {
    const pos = load<i32>(positions + (<usize>t << 2));
    const table = tables + ((<usize>load<i32>(seqIdx + (<usize>t << 2)) * maxBlocks) << 2);
    const lo = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
    for (let h = 0; h < nH; h++) {
      const q = qkv + ((<usize>t * ldq + <usize>h * D) << 2);
      const kvOff = (<usize>((h / group) * D)) << 2;
      let j = lo;
      while (j <= pos) {
        const b = j / blockSize;
        const end = min(pos + 1, (b + 1) * blockSize);
        let k = kCache + (<usize>load<i32>(table + (<usize>b << 2)) * blockSize + (j - b * blockSize)) * rowB + kvOff;
        if ((D & 3) == 0) {
          for (; j + 4 <= end; j += 4) {
            dot4D(scores + (<usize>(j - lo) << 2), q, k, rowB, D, scale);
            k += rowB << 2;
          }
        }
        for (; j < end; j++) {
          store<f32>(scores + (<usize>(j - lo) << 2), dotD(q, k, D) * scale);
          k += rowB;
        }
      }
      const n = pos - lo + 1;
      if (cap > 0) {
        for (let i = 0; i < n; i++) {
          const ps = scores + (<usize>i << 2);
          const y = load<f32>(ps) / cap;
          const e = Mathf.exp(-2 * Mathf.abs(y));
          store<f32>(ps, cap * ((1 - e) / (1 + e)) * (y < 0 ? -1 : 1));
        }
      }
      // The maximum and the exponentials' sum 4 lanes at a time (exp4: the scores less their maximum are <= 0).
      let i = 0;
      let mv = f32x4.splat(-Infinity);
      for (; i + 4 <= n; i += 4) mv = f32x4.pmax(mv, v128.load(scores + (<usize>i << 2)));
      let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      for (; i < n; i++) m = max(m, load<f32>(scores + (<usize>i << 2)));
      mv = f32x4.splat(m);
      let sv = f32x4.splat(0);
      i = 0;
      for (; i + 4 <= n; i += 4) {
        const ps = scores + (<usize>i << 2);
        const p = exp4(f32x4.sub(v128.load(ps), mv));
        v128.store(ps, p);
        sv = f32x4.add(sv, p);
      }
      let sum = hsum(sv);
      for (; i < n; i++) {
        const ps = scores + (<usize>i << 2);
        const p = Mathf.exp(load<f32>(ps) - m);
        store<f32>(ps, p);
        sum += p;
      }
      const inv: f32 = 1 / sum;
      const o = out + ((<usize>t * nH * D + <usize>h * D) << 2);
      for (let c = 0; c < D32; c += 32) weightedSum32(o + (<usize>c << 2), scores, table, lo, pos, blockSize, rowB, vCache + kvOff + (<usize>c << 2), inv);
      if (D32 < D) {
        const oc = o + (<usize>D32 << 2);
        memory.fill(oc, 0, <usize>(D - D32) << 2);
        for (let jj = lo; jj <= pos; jj++) {
          const slot = <usize>load<i32>(table + (<usize>(jj / blockSize) << 2)) * blockSize + (jj % blockSize);
          axpyD(oc, load<f32>(scores + (<usize>(jj - lo) << 2)), vCache + slot * rowB + kvOff + (<usize>D32 << 2), D - D32);
        }
        for (let i = D32; i < D; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) * inv);
      }
    }
  }
}
