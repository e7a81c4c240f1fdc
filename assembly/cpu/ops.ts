// The CPU backend's elementwise and attention kernels (src/cpu/cpu-decoder.ts calls them in the decoder's order).
// Every buffer is f32 unless said; row strides (ld*) are in elements.

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
    let ss = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
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
    for (let i = 0; i < I; i++) {
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

/** q . k over D floats. */
@inline function dotD(q: usize, k: usize, D: i32): f32 {
  let a = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= D; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(q + (<usize>i << 2)), v128.load(k + (<usize>i << 2))));
  let s = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
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
 * Paged causal attention for T query tokens of many sequences:
 *   out[t, h] = sum_j softmax_j(s_j) v_j,  s_j = softcap(q[t, h] . k_j * scale), j over key positions
 *   lo(pos) .. pos of token t's sequence (lo = pos + 1 - window with a sliding window, else 0),
 * keys and values read from the paged cache through the sequence's block table (GQA: head h reads kv head
 * h / (nH / nKv)).
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
  for (let t = 0; t < T; t++) {
    const pos = load<i32>(positions + (<usize>t << 2));
    const table = tables + ((<usize>load<i32>(seqIdx + (<usize>t << 2)) * maxBlocks) << 2);
    const lo = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
    for (let h = 0; h < nH; h++) {
      const q = qkv + ((<usize>t * ldq + <usize>h * D) << 2);
      const kvOff = (<usize>((h / group) * D)) << 2;
      let m: f32 = -Infinity;
      for (let j = lo; j <= pos; j++) {
        const slot = <usize>load<i32>(table + (<usize>(j / blockSize) << 2)) * blockSize + (j % blockSize);
        let s = dotD(q, kCache + slot * rowB + kvOff, D) * scale;
        if (cap > 0) {
          const y = s / cap;
          const e = Mathf.exp(-2 * Mathf.abs(y));
          s = cap * ((1 - e) / (1 + e)) * (y < 0 ? -1 : 1);
        }
        store<f32>(scores + (<usize>(j - lo) << 2), s);
        if (s > m) m = s;
      }
      const o = out + ((<usize>t * nH * D + <usize>h * D) << 2);
      memory.fill(o, 0, <usize>D << 2);
      let sum: f32 = 0;
      for (let j = lo; j <= pos; j++) {
        const p = Mathf.exp(load<f32>(scores + (<usize>(j - lo) << 2)) - m);
        sum += p;
        const slot = <usize>load<i32>(table + (<usize>(j / blockSize) << 2)) * blockSize + (j % blockSize);
        axpyD(o, p, vCache + slot * rowB + kvOff, D);
      }
      const inv: f32 = 1 / sum;
      for (let i = 0; i < D; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) * inv);
    }
  }
}
