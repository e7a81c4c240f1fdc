/**
 * The scale searches of ggml's k-quant reference quantizers (ggml-quants.c, "2-6 bit quantization in
 * super-blocks"), with C's f32 arithmetic: every float operation rounded by Math.fround, in C's order, no FMA.
 * k-quants.ts builds its quantizers from them.
 */

/** C's float arithmetic: every operation's result rounded to f32. */
export const f = Math.fround;
/** ggml-quants.c's GROUP_MAX_EPS (1e-15f): a group of smaller magnitudes quantizes to zeros. */
export const GROUP_MAX_EPS = f(1e-15);
/** C's 0.1f. */
export const F01 = f(0.1);

const niF = new Float32Array(1);
const niI = new Int32Array(niF.buffer);
/**
 * ggml's nearest_int: the f32 sum v + 1.5 * 2^23 read as bits, which for |v| < 2^22 (ggml asserts it) is v rounded
 * half to even: the f32 sum minus 1.5 * 2^23 (exact: the double sum rounds to f32 as the f32 sum does). Beyond,
 * the bits, as C computes them.
 */
export function nearestInt(v: number): number {
  if (v < 4194304 && v > -4194304) return f(v + 12582912) - 12582912;
  niF[0] = v + 12582912;
  return (niI[0] & 0x007fffff) - 0x00400000;
}

/** C's MAX(lo, MIN(hi, v)). */
export const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

/**
 * ggml's make_qx_quants with rmse_type 1 and no importance weights (q6_k): symmetric levels L in [0, 2 nmax) for
 * x[xo .. xo + n) (into L[lo ..]), the scale found by trying 19 step sizes around max / -nmax, weighted by x^2.
 */
export function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nearestInt(f(iscale * v)), -nmax, nmax - 1);
    L[lo + i] = l + nmax;
    const w = f(v * v);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(F01 * is)) / max);
    sumlx = suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clamp(nearestInt(f(iscale * v)), -nmax, nmax - 1);
      const w = f(v * v);
      sumlx = f(sumlx + f(f(w * v) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = nmax + clamp(nearestInt(f(iscale * x[xo + i])), -nmax, nmax - 1);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * ggml's make_q3_quants with do_rmse (q3_k): symmetric levels in [0, 2 nmax), starting from max / -nmax and then
 * moving single levels while the x^2-weighted fit improves (up to 5 passes).
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nearestInt(f(iscale * v)), -nmax, nmax - 1);
    L[lo + i] = l;
    const w = f(v * v);
    sumlx = f(sumlx + f(f(w * v) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const w = f(v * v);
      const li = L[lo + i];
      let slx = f(sumlx - f(f(w * v) * li));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * li) * li));
        const nl = clamp(nearestInt(f(f(v * sl2) / slx)), -nmax, nmax - 1);
        if (nl !== li) {
          slx = f(slx + f(f(w * v) * nl));
          sl2 = f(sl2 + f(f(w * nl) * nl));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/**
 * ggml's make_qkx2_quants: levels L in [0, nmax] and (scale, min) for x ~ scale L - min (min >= 0 stored into
 * mins[mi]), the best `weights`-weighted fit (squared or, with useMad, absolute error) of nstep + 1 least-squares
 * refits from step sizes (max - min) / (nmax + rmin + rdelta is).
 */
export function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array, L: Uint8Array, lo: number,
  mins: Float32Array, mi: number, rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  let min = x[xo];
  let max = x[xo];
  let sumW = weights[0];
  let sumX = f(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = f(sumW + weights[i]);
    sumX = f(sumX + f(weights[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    mins[mi] = -min;
    return 0;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = clamp(nearestInt(f(iscale * f(v - min))), 0, nmax);
    L[lo + i] = l;
    const diff = f(f(f(scale * l) + min) - v);
    bestError = f(bestError + f(weights[i] * (useMad ? Math.abs(diff) : f(diff * diff))));
  }
  const Laux = lauxScratch;
  const xm = xmScratch; // x - min, for the current min (the best fit's so far)
  for (let i = 0; i < n; i++) xm[i] = x[xo + i] - min;
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = clamp(nearestInt(f(iscale * xm[i])), 0, nmax);
      Laux[i] = l;
      const wl = f(weights[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * v));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        curError = f(curError + f(weights[i] * (useMad ? Math.abs(diff) : f(diff * diff))));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
        for (let i = 0; i < n; i++) xm[i] = x[xo + i] - min;
      }
    }
  }
  mins[mi] = -min;
  return scale;
}
const lauxScratch = new Uint8Array(32);
const xmScratch = new Float32Array(32);
