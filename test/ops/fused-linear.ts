/**
 * The fused linear's f64 reference, shared by the linear, quantized and int8-activation kernel tests: optional RMSNorm
 * of the input (weight g, eps 1e-5), product + bias, optional gating (gate rows, then up rows), optional residual.
 */

/** The epilogue fusions of a case. */
export type Fusions = { norm?: boolean; gated?: 'silu' | 'gelu_pytorch_tanh'; residual?: boolean };

export const silu = (v: number) => v / (1 + Math.exp(-v));
export const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3)));

/** RMSNorm in f64 (weight g, eps 1e-5), or x itself when g is absent. */
export function normed(x: Float32Array, T: number, K: number, g?: Float32Array): Float64Array {
  const out = Float64Array.from(x);
  if (!g) return out;
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let k = 0; k < K; k++) ss += x[t * K + k] ** 2;
    const inv = 1 / Math.sqrt(ss / K + 1e-5);
    for (let k = 0; k < K; k++) out[t * K + k] = x[t * K + k] * inv * g[k];
  }
  return out;
}

/**
 * The fused linear in f64 from inputs xin [T, K] and weights w [rows, K]: raw products y (with bias), the epilogue's
 * outputs, an absolute tolerance from sum |x w| (4e-6: f32 accumulation in another order), and per raw product
 * `bound` (sum over blocks of blockErr[t, block] sum |w|: the int8 activations' error bound; 0 without blockErr).
 */
export function fusedLinearRef(xin: Float64Array, w: Float32Array, b: Float32Array | null, T: number, K: number, rows: number, f: Fusions, residual?: Float32Array, blockErr?: Float64Array) {
  const y = new Float64Array(T * rows);
  const m = new Float64Array(T * rows);
  const bound = new Float64Array(T * rows);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < rows; n++) {
      let s = b ? b[n] : 0;
      let a = b ? Math.abs(b[n]) : 0;
      let e = 0;
      for (let k = 0; k < K; k++) {
        s += xin[t * K + k] * w[n * K + k];
        a += Math.abs(xin[t * K + k] * w[n * K + k]);
        if (blockErr) e += blockErr[t * (K / 32) + (k >> 5)] * Math.abs(w[n * K + k]);
      }
      y[t * rows + n] = s;
      m[t * rows + n] = a;
      bound[t * rows + n] = e;
    }
  }
  const act = f.gated === 'silu' ? silu : geluTanh;
  const N = f.gated ? rows / 2 : rows;
  const out = new Float64Array(T * N);
  const atol = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      const i = t * N + n;
      if (f.gated) {
        const gv = y[t * rows + n];
        const u = y[t * rows + N + n];
        out[i] = act(gv) * u;
        atol[i] = 4e-6 * (m[t * rows + n] * (Math.abs(u) + 1) + m[t * rows + N + n] * (Math.abs(act(gv)) + 1)) + 1e-6;
      } else {
        out[i] = y[t * rows + n] + (residual ? residual[i] : 0);
        atol[i] = 4e-6 * m[t * rows + n] + 1e-6;
      }
    }
  }
  return { out, atol, y, bound };
}
