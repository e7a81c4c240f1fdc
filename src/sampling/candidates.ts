/**
 * Exact sampling from GPU-selected candidates: the token the CPU sampler (assembly/sampler.ts, stage 4) would draw
 * from the whole row, decided from the row's top-K logits (ops/topk.ts) and two GPU sums, or `null` ("copy the
 * full row") when those cannot prove it. A `null` leaves the generator untouched; a token advances it by exactly
 * one `uniform()`, as the sampler does. So a seed gives the same tokens whichever path a row takes.
 *
 * What the GPU gives per row (ops/topk.ts): the K largest logits, descending, ties to the lower id (the sampler's
 * sort-key order); the max m and the min-p floor it used; Z = sum of exp((l - m) / T) over the survivors
 * (l >= floor) of the whole vocabulary; and per candidate the same sum over the survivors with a lower id.
 *
 * How it stays exact. Everything the sampler computes from candidates alone (weights exp4(f32((l - m) * 1/T)),
 * histogram bins, f64 running sums in its exact order) is recomputed here bit for bit: exp4 and every f32 step
 * mirror assembly/sampler/vec.ts and draw.ts through Math.fround (f32 + - * / are correctly rounded in wasm; a
 * double result rounded once to f32 is the same value). Only Z and the id-order prefixes come from the GPU, with a
 * relative error below SUM_REL_ERROR; a decision that depends on them is taken only when it is the same for every
 * value within that error. The proof conditions, per path of sampleRow (assembly/sampler/draw.ts):
 *
 *   "Known" tokens: the list holds the top n = min(K, V) tokens, so every token outside it has l <= l[n-1]. A
 *   token set {l >= c} is known when n = V or l[n-1] < c. Histogram bins grow as l falls, so with cut c the bins
 *   below bin(l[n-1]) are known whole (`knownBins`). "Complete": every token of nonzero weight is in the list
 *   (n = V, or weight(l[n-1]) = 0 because l[n-1] < floor or (l[n-1] - m) / T < -87.34, where exp4 gives 0).
 *
 *   1. Temperature only (drawPlain: u * Z walked in id order). Complete: replayed exactly (block sums of 256 ids,
 *      16-wide SIMD lanes, f64). Else candidate j is the answer when P_j + E < u (Z - E) and
 *      P_j - E + w_j > u (Z + E), with E = SUM_REL_ERROR * Z: the draw lands inside j's interval for any CPU sums
 *      within the error. A draw that lands on a non-candidate (the tail's mass) or near an edge: null.
 *   2. Top-k <= 64: the kept set is {l >= max(floor, l[k-1])} (ties kept). Needs k <= n and that set known; then
 *      replayed exactly (no GPU sums: top-p's mass is the candidates' own).
 *   3. Top-k > 64: the cut search (cutForTopK) only asks "count(l >= x) >= k", which the list answers whenever
 *      k <= n (exactly when x > l[n-1], else yes). Then the histogram walk must stay in known bins: the bin of the
 *      k-th survivor, and the top-p boundary, below knownBins.
 *   4. Top-p alone: mass = Z over the candidates within 16 T of the max (+ the tail's mass). The boundary (bin b,
 *      count j) is found for both ends of Z +- E and must agree, within known bins; a boundary below the
 *      candidates (WIDEN: every survivor a candidate) needs every survivor known. Complete rows replay Z exactly.
 *   Min-p rides on all four: the GPU masks with the same floor (checked bit for bit against this file's).
 * Rows that edit logits first (penalties, bias, allowed ids, bad words, min-tokens masks, logits processors) or
 * ask for logprobs are not eligible: their rows go to the CPU sampler whole.
 *
 * @example
 *   const K = candidateCount(reqs);
 *   // GPU: topKCandidates(rec, logits, rowParams, out, S, V, K) with rowParams[r] = candidateRowParams(params)
 *   const id = sampleCandidates(readCandidateRow(mapped, offset, K), req, V);
 *   if (id === null) { ...copy the full row and use Sampler.sample }
 */
import type { SamplingParams } from '../sampling-params.js';
import { Generator } from './generator.js';
import { onlyFiltersApply, type SamplerRequest } from './sampler.js';

/** One row's GPU candidates (ops/topk.ts readCandidateRow gives this shape). */
export interface Candidates {
  /** Row max, as the GPU found it (must equal logits[0]). */
  max: number;
  /** The min-p floor the GPU's sums used (f32; -3.4028235e38 without min-p). */
  floor: number;
  /** Sum over the whole row of exp((l - max) / T) for l >= floor. */
  sumExp: number;
  /** NaN logits seen in the row (any: no candidates). */
  nanCount: number;
  /** Ids of the K largest logits, descending, ties to the lower id. */
  ids: ArrayLike<number>;
  /** Their logits. */
  logits: ArrayLike<number>;
  /** prefix[j]: the sumExp terms of ids below ids[j] (id order, exclusive). */
  prefix: ArrayLike<number>;
}

/**
 * Bound on the relative error, against Z, between the GPU's sums and the CPU sampler's own (both approximate the
 * exact sum of e^x over the same f32 arguments x, computed alike on both sides). Terms: exp4 and the GPU's expNeg
 * (same polynomial) are within 2^-22 each (test: exp4 mirror); the CPU adds 4 f32 terms per lane before f64 (2
 * roundings); a GPU sum passes at most ~60 f32 roundings of 2^-24 (16 adds per thread, a scan of log2(WG) <= 8
 * levels, up to 15 adds to a candidate inside its thread's run, the chunk scan and its rest). All terms are
 * positive, so each rounding costs at most 2^-24 of Z: 2 * 2^-22 + 62 * 2^-24 = 4.2e-6 in all. 2^-15 = 3.1e-5
 * is 7x that (measured on an H200: under 1% of it). Draws within it of an edge fall back: a rate of ~1e-4.
 */
export const SUM_REL_ERROR = 2 ** -15;

const f = Math.fround;
const EPS = f(1e-5);
const LOWEST = -3.4028234663852886e38;
const CUT = 16;
const HIST_BINS = 2048;
const SMALL_TOP = 64;
const PLAIN_BLOCK = 256;
const MAGIC = 12582912;
/** sampleFrom's "the top-p boundary lies below the candidates" (assembly/sampler/layout.ts WIDEN). */
const WIDEN = -2;

/** True when a row can be sampled from candidates: stage 4 alone, on the model's raw row, no logprobs. */
export function candidatesEligible(params: SamplingParams, numOutputTokens: number): boolean {
  return !params.greedy && onlyFiltersApply(params, numOutputTokens);
}

/** K for a step: 64, or the next of 128 / 256 above the largest top-k (path 2 needs K > top-k). */
export function candidateCount(params: readonly SamplingParams[]): 64 | 128 | 256 {
  const need = params.reduce((n, p) => (p.topK > 0 ? Math.max(n, p.topK + 1) : n), 0);
  return need <= 64 ? 64 : need <= 128 ? 128 : 256;
}

/**
 * The GPU's per-row inputs [1/T, min-p offset] (f32), as the sampler computes them: 1/T in f32, and
 * f32(T * f32(ln minP)) (the floor is max + offset), or +1 for "no floor" (a real offset is <= 0).
 */
export function candidateRowParams(params: SamplingParams): [number, number] {
  const t = f(params.temperature);
  if (!(t >= EPS)) return [1, 1];
  const minP = f(params.minP);
  return [f(1 / t), minP > 0 ? f(t * f(Math.log(minP))) : 1];
}

/**
 * The token the CPU sampler would draw for this row and generator state, or null when the candidates cannot
 * prove it (then the generator is untouched). On a token, `q.generator` has advanced by one uniform().
 */
export function sampleCandidates(c: Candidates, q: SamplerRequest, vocabSize: number): number | null {
  const p = q.params;
  if (!candidatesEligible(p, q.outputTokenIds.length) || c.nanCount !== 0) return null;
  const n = Math.min(c.ids.length, vocabSize, MAX_LIST); // the top of a longer list is a list too
  const t = f(p.temperature);
  if (n === 0 || !(t >= EPS)) return null;
  const m = c.logits[0];
  if (!Number.isFinite(m) || c.max !== m) return null;
  const minP = f(p.minP);
  const floor = minP > 0 ? Math.max(LOWEST, f(m + f(t * f(Math.log(minP))))) : LOWEST;
  if (c.floor !== floor) return null; // the GPU summed over another set of survivors
  const gen = scratchGenerator;
  gen.state.set(q.generator.state);
  const u = gen.uniform();
  const topK = p.topK > 0 && p.topK < vocabSize ? p.topK : 0;
  const id = new CandidateRow(c, n, vocabSize, m, floor, t).sample(topK, f(p.topP), u);
  if (id !== null) q.generator.state.set(gen.state);
  return id;
}

const scratchGenerator = new Generator(0);

/** e^x for x <= 0, bit for bit as assembly/sampler/vec.ts exp4 (cephes expf); 0 below -87.33654 and for NaN. */
export function exp4(x: number): number {
  if (!(x >= X_MIN)) return 0;
  const t = f(f(x * LOG2E) + MAGIC);
  const n = t - MAGIC; // round(x / ln 2) in [-126, 0], exact
  let r = f(x - f(n * C1));
  r = f(r - f(n * C2));
  let y = f(f(P0 * r) + P1);
  y = f(f(y * r) + P2);
  y = f(f(y * r) + P3);
  y = f(f(y * r) + P4);
  y = f(f(y * r) + P5);
  y = f(f(f(y * f(r * r)) + r) + 1);
  return f(y * POW2[-n]);
}
const X_MIN = f(-87.33654);
const LOG2E = f(1.44269504088896341);
const C1 = f(0.693359375);
const C2 = f(-2.1219444e-4);
const [P0, P1, P2, P3, P4, P5] = [
  1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
].map(f);
/** 2^-i, i <= 126 (exp4 builds 2^n from float bits; exactly these values). */
const POW2 = Float64Array.from({ length: 127 }, (_, i) => 2 ** -i);

/** A run of the list: the candidates of one histogram bin, [start, end) in list (= sorted) order. */
interface Run {
  bin: number;
  start: number;
  end: number;
  /** Their weights summed in id order (the sampler's HMASS[bin]); NaN until needed. */
  mass: number;
}

/** A draw's kept set: whole runs before `run`, then all of it (n < 0) or its first n (sorted order). */
interface Boundary {
  run: number;
  n: number;
  widen: boolean;
}

/** The longest list used (ops/topk.ts MAX_CANDIDATES). */
const MAX_LIST = 256;
/** Scratch for sorting list indices by id: id * 256 + index, sorted as numbers. */
const byIdKeys = new Float64Array(MAX_LIST);

/**
 * One row's candidates and the sampler's per-row constants; methods mirror assembly/sampler/draw.ts. Bins only
 * grow down the list (logit descending), so each nonempty bin is a run of the list already in the sampler's sorted
 * order (logit descending, id ascending), and empty bins, adding 0 to every f64 sum, can be skipped.
 */
class CandidateRow {
  private readonly invT: number;
  /** f32 weight of list entry j (0 below the floor), computed on first use (NaN: not yet). */
  private readonly w: Float64Array;
  private readonly lastL: number;
  private readonly allKnown: boolean;
  /** Every token of nonzero weight is in the list. */
  private readonly complete: boolean;

  constructor(
    private readonly c: Candidates,
    private readonly n: number,
    V: number,
    private readonly m: number,
    private readonly floor: number,
    private readonly t: number,
  ) {
    this.invT = f(1 / t);
    this.w = new Float64Array(n).fill(Number.NaN);
    this.lastL = c.logits[n - 1];
    this.allKnown = n >= V;
    this.complete = this.allKnown || this.weight(n - 1) === 0;
  }

  private weight(j: number): number {
    let x = this.w[j];
    if (x !== x) {
      const l = this.c.logits[j];
      x = this.w[j] = l >= this.floor ? exp4(f(f(l - this.m) * this.invT)) : 0;
    }
    return x;
  }

  /** List indices [start, end) in id order. */
  private byId(start: number, end: number): number[] {
    const ids = this.c.ids;
    const n = end - start;
    if (n <= 64) {
      // Insertion sort: runs are short, and a native sort costs microseconds to set up.
      const out: number[] = [];
      for (let j = start; j < end; j++) {
        let i = out.length;
        out.push(j);
        while (i > 0 && ids[out[i - 1]] > ids[j]) out[i] = out[--i];
        out[i] = j;
      }
      return out;
    }
    const keys = byIdKeys.subarray(0, n);
    for (let j = start; j < end; j++) keys[j - start] = ids[j] * 256 + j;
    keys.sort();
    return Array.from(keys, (k) => k % 256);
  }

  /** sampleRow after the draw of u, or null. */
  sample(topK: number, topP: number, u: number): number | null {
    const { floor, m, t } = this;
    if (topK <= 0 && topP >= 1) return this.drawPlain(u);
    if (topK > this.n) return null;
    if (topK > 0 && topK <= SMALL_TOP) {
      // The kept set is every token >= the k-th logit (ties too): sampleFrom with that cut and no top-k of its own.
      return this.orArgmax(this.sampleFrom(Math.max(floor, this.c.logits[topK - 1] + 0), false, 0, topP, u));
    }
    const near = Math.max(floor, f(m - f(CUT * t)));
    if (topK > 0) return this.orArgmax(this.sampleFrom(this.cutForTopK(near, topK, f(CUT * t)), false, topK, topP, u));
    const id = this.sampleFrom(near, true, 0, topP, u);
    if (id !== WIDEN) return this.orArgmax(id);
    if (!(this.allKnown || this.lastL < floor)) return null; // every survivor becomes a candidate
    let j = this.n - 1;
    while (!(this.c.logits[j] >= floor)) j--;
    return this.orArgmax(this.sampleFrom(this.c.logits[j], false, 0, topP, u));
  }

  private orArgmax(id: number | null): number | null {
    return id === null ? null : id >= 0 ? id : this.c.ids[0];
  }

  /** countGe(row, x) >= k, for k <= n: exact above the list's last logit, and true at or below it. */
  private countAtLeast(x: number, k: number): boolean {
    if (!this.allKnown && x <= this.lastL) return true;
    let count = 0;
    while (count < this.n && this.c.logits[count] >= x) count++;
    return count >= k;
  }

  /** cutForTopK (draw.ts), its counts answered by the list. */
  private cutForTopK(hi: number, k: number, step: number): number {
    const floor = this.floor;
    if (this.countAtLeast(hi, k)) return hi;
    if (!this.countAtLeast(floor, k)) return floor;
    let lo = Math.max(floor, f(hi - step));
    while (!this.countAtLeast(lo, k)) {
      hi = lo;
      step = f(step * 2);
      lo = Math.max(floor, f(hi - step));
    }
    for (let j = 0; j < 8; j++) {
      const mid = f(lo + f(f(hi - lo) * 0.5));
      if (this.countAtLeast(mid, k)) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /**
   * sampleFrom (draw.ts) over the tokens >= cut, or null when a decision needs a bin the list does not hold whole,
   * or depends on where Z lies within its error.
   */
  private sampleFrom(cut: number, tailKept: boolean, topK: number, topP: number, u: number): number | null {
    const { c, n, m, invT } = this;
    let nc = 0; // candidates: the list prefix >= cut
    while (nc < n && c.logits[nc] >= cut) nc++;
    const cutKnown = this.allKnown || nc < n;
    // Runs of equal bin, HIST_BINS - 1 bins per (m - cut) / T; with the cut not known, the last run's bin may
    // hold unlisted tokens: runs[0, known) are whole.
    const perUnit = f((HIST_BINS - 1) / Math.max(f(f(m - cut) * invT), f(1e-3)));
    const scale = f(-invT * perUnit);
    const runs: Run[] = [];
    for (let j = 0; j < nc; j++) {
      const bin = f(Math.min(f(f(c.logits[j] - m) * scale), HIST_BINS - 1) + MAGIC) - MAGIC;
      if (runs.length > 0 && runs[runs.length - 1].bin === bin) runs[runs.length - 1].end = j + 1;
      else runs.push({ bin, start: j, end: j + 1, mass: Number.NaN });
    }
    const known = cutKnown ? runs.length : runs.length - 1;
    const mass = (r: number) => {
      const run = runs[r];
      if (run.mass !== run.mass) {
        let s = 0;
        for (const j of this.byId(run.start, run.end)) s += this.weight(j);
        run.mass = s;
      }
      return run.mass;
    };
    const sumRuns = (r: number) => {
      let s = 0;
      for (let i = 0; i < r; i++) s += mass(i);
      return s;
    };
    const sumList = (start: number, k: number) => {
      let s = 0;
      for (let j = start; j < start + k; j++) s += this.weight(j);
      return s;
    };
    let all: number[] | null = null; // the candidates in id order, once needed
    const candMass = () => {
      let s = 0;
      for (const j of (all ??= this.byId(0, nc))) s += this.weight(j);
      return s;
    };
    if (topK <= 0 && topP >= 1) return cutKnown ? this.walk((all ??= this.byId(0, nc)), 0, u * candMass()) : null;
    const needTail = tailKept && topK <= 0;
    const canWiden = tailKept && cut > this.floor;

    // The mass top-p is relative to, as an interval [lo, hi] when it rests on the GPU's Z.
    let kept: Boundary = { run: runs.length, n: -1, widen: false }; // all of bin HIST_BINS - 1: see lastRun
    let massLo: number;
    let massHi: number;
    if (needTail) {
      // candMass is exact when every candidate of nonzero weight is listed (complete rows: the others add 0).
      if (this.complete) massLo = massHi = this.mass(candMass(), this.zCollect());
      else if (cutKnown) [massLo, massHi] = this.zRange().map((z) => this.mass(candMass(), z));
      else [massLo, massHi] = this.zRange();
    } else if (topK <= 0 && !cutKnown) {
      return null;
    } else {
      massLo = massHi = topK > 0 && !cutKnown ? Number.NaN : candMass(); // NaN: replaced below
    }
    if (topK > 0) {
      let count = 0;
      let r = 0;
      for (; r < runs.length; r++) {
        if (r >= known) return null;
        const len = runs[r].end - runs[r].start;
        if (count + len >= topK) break;
        count += len;
      }
      if (r < runs.length) {
        // The k-th survivor is in run r: ties with it are kept too.
        const { start, end } = runs[r];
        let nk = topK - count;
        const kth = c.logits[start + nk - 1];
        while (start + nk < end && c.logits[start + nk] === kth) nk++;
        kept = { run: r, n: nk, widen: false };
        massLo = massHi = sumRuns(r) + sumList(start, nk);
      } else if (!cutKnown) {
        return null;
      }
    }
    // The sampler's lastBin: the top-k bin, else bin HIST_BINS - 1, a run of the list or an empty one (index
    // runs.length, mass 0).
    const endsAtLastBin = runs.length > 0 && runs[runs.length - 1].bin === HIST_BINS - 1;
    const lastRun = kept.run < runs.length ? kept.run : endsAtLastBin ? runs.length - 1 : runs.length;
    const runMass = (r: number) => (r < runs.length ? mass(r) : 0);
    if (topP < 1) {
      const boundary = (target: number): Boundary | null => {
        let cum = 0;
        let r = 0;
        for (; r < lastRun; r++) {
          if (r >= known) return null;
          if (!(cum + mass(r) < target)) break;
          cum += mass(r);
        }
        if (r < runs.length && r >= known) return null;
        if (kept.n < 0 && cum + runMass(r) < target && canWiden) return { run: r, n: 0, widen: true };
        const start = r < runs.length ? runs[r].start : 0;
        const nb = r === kept.run && kept.n >= 0 ? kept.n : r < runs.length ? runs[r].end - start : 0;
        let j = 0;
        while (j < nb && cum < target) cum += this.weight(start + j++);
        return { run: r, n: j, widen: false };
      };
      const lo = boundary(topP * massLo);
      const hi = massHi === massLo ? lo : boundary(topP * massHi);
      if (!lo || !hi || lo.run !== hi.run || lo.n !== hi.n || lo.widen !== hi.widen) return null;
      if (lo.widen) return WIDEN;
      kept = lo;
    } else if (kept.n < 0) {
      kept = { run: lastRun, n: -1, widen: false };
    }
    if (kept.run < runs.length && kept.run >= known) return null;
    const last = kept.run < runs.length ? runs[kept.run] : null;
    const total = sumRuns(kept.run) + (kept.n < 0 ? runMass(kept.run) : sumList(last!.start, kept.n));
    // drawBins: whole bins in id order, then the last bin (sorted prefix, or whole in id order).
    const target = u * total;
    let cum = 0;
    for (let r = 0; r < kept.run; r++) {
      const s = mass(r);
      if (s <= 0 || cum + s <= target) {
        cum += s;
        continue;
      }
      return this.walk(this.byId(runs[r].start, runs[r].end), cum, target);
    }
    if (!last) return this.walk([], cum, target);
    const entries = kept.n < 0 ? this.byId(last.start, last.end) : Array.from({ length: kept.n }, (_, j) => last.start + j);
    return this.walk(entries, cum, target);
  }

  /** sampleFrom's candMass + tailMass: the tail is what the survivors' total Z has beyond the candidates. */
  private mass(candMass: number, z: number): number {
    return candMass + Math.max(0, z - candMass);
  }

  /** walk / walkKeys (draw.ts): the first entry where the running sum passes target, else the last positive one. */
  private walk(entries: readonly number[], cum: number, target: number): number {
    let last = -1;
    for (const j of entries) {
      const x = this.weight(j);
      if (x <= 0) continue;
      cum += x;
      last = this.c.ids[j];
      if (cum > target) return last;
    }
    return last;
  }

  /** The GPU's Z widened by its error bound. */
  private zRange(): [number, number] {
    const e = SUM_REL_ERROR * this.c.sumExp;
    return [this.c.sumExp - e, this.c.sumExp + e];
  }

  /** Survivors (nonzero weight) in id order, as 16-id SIMD groups with their f32x4 lane sums. */
  private groups(): { group: number; e: number[]; entries: number[] }[] {
    const js = this.byId(0, this.n).filter((j) => this.weight(j) > 0);
    const out: { group: number; e: number[]; entries: number[] }[] = [];
    for (let i = 0; i < js.length; ) {
      const group = this.c.ids[js[i]] >> 4;
      const v = new Array<number>(16).fill(0);
      const entries: number[] = [];
      for (; i < js.length && this.c.ids[js[i]] >> 4 === group; i++) {
        v[this.c.ids[js[i]] & 15] = this.weight(js[i]);
        entries.push(js[i]);
      }
      // e = (w0 + w1) + (w2 + w3) on f32x4 lanes: lane L sums ids 16g + L, + 4, + 8, + 12.
      out.push({ group, e: [0, 1, 2, 3].map((L) => f(f(v[L] + v[4 + L]) + f(v[8 + L] + v[12 + L]))), entries });
    }
    return out;
  }

  /** collect's survivor total (complete rows): f64x2 lanes (e0 + e2, e1 + e3) over every group, then added. */
  private zCollect(): number {
    let a0 = 0;
    let a1 = 0;
    for (const { e } of this.groups()) {
      a0 += e[0] + e[2];
      a1 += e[1] + e[3];
    }
    return a0 + a1;
  }

  /** drawPlain: exact replay for complete rows, else the candidate whose id-order interval surely holds u * Z. */
  private drawPlain(u: number): number | null {
    const c = this.c;
    if (!this.complete) {
      const e = SUM_REL_ERROR * c.sumExp;
      const lo = u * (c.sumExp - e);
      const hi = u * (c.sumExp + e);
      // Weights are at most 1 (l <= max): only entries whose prefix sits within 1 of the draw can hold it.
      for (let j = 0; j < this.n; j++) {
        const p = c.prefix[j];
        if (p + e < lo && p - e + 1 > hi && p - e + this.weight(j) > hi && this.weight(j) > 0) return c.ids[j];
      }
      return null;
    }
    // Block sums of PLAIN_BLOCK ids (f64x2 lanes per block), their total, then the walk.
    const groups = this.groups();
    const blocks: { sum: number; entries: number[] }[] = [];
    let a0 = 0;
    let a1 = 0;
    let entries: number[] = [];
    groups.forEach((g, i) => {
      a0 += g.e[0] + g.e[2];
      a1 += g.e[1] + g.e[3];
      entries.push(...g.entries);
      const block = (g.group * 16) / PLAIN_BLOCK;
      if (i + 1 === groups.length || Math.floor((groups[i + 1].group * 16) / PLAIN_BLOCK) !== Math.floor(block)) {
        blocks.push({ sum: a0 + a1, entries });
        a0 = a1 = 0;
        entries = [];
      }
    });
    let z = 0;
    for (const b of blocks) z += b.sum;
    const target = u * z;
    let cum = 0;
    let last = -1;
    for (const { sum, entries: es } of blocks) {
      if (sum <= 0) continue;
      if (cum + sum <= target) {
        cum += sum;
        continue;
      }
      for (const j of es) {
        cum += this.weight(j);
        last = c.ids[j];
        if (cum > target) return last;
      }
    }
    return last >= 0 ? last : c.ids[0];
  }
}
