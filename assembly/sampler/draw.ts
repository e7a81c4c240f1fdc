// Stage 4 of the sampler (see assembly/sampler.ts): greedy argmax, or temperature, min-p, top-k, top-p and one
// draw from the row's own xoshiro128** generator.
import {
  CUT, EPS, F_MIN_P, F_RNG, F_TEMPERATURE, F_TOP_K, F_TOP_P, HIST_BINS, LOWEST, NEG_INF, NO_BIN,
  PLAIN_BLOCK, SMALL_TOP, WIDEN, field, offCBin, offCW, offHCount, offHMass, offKeys, offTmp, slot,
} from './layout';
import { keyIndex, keyValue, sortKey, sortKeys, topInsert } from './keys';
import { argmax, countGe, exp4, EXP_MIN, MAGIC, maxOf, minSurvivor } from './vec';

/**
 * The sampled id of one processed row. Paths, cheapest first: greedy argmax; no top-k/top-p: drawPlain; top-k up
 * to SMALL_TOP: the k-th logit from topInsert, then sampleFrom over the tokens >= it; larger top-k: sampleFrom
 * over the tokens >= a cut from cutForTopK; top-p alone: sampleFrom over the candidates within CUT of the top
 * (the rest summed), and once more over every survivor if the boundary falls below them.
 */
export function sampleRow(row: usize, v: i32, vp: i32, p: usize, stride: usize, scratch: usize): i32 {
  const t = field<f32>(p, stride, F_TEMPERATURE);
  if (t < EPS) return argmax(row, vp);
  const u = nextUniform(p, stride); // one draw per sampled row, whatever the filters keep
  const m = maxOf(row, vp);
  if (!(m > NEG_INF)) return argmax(row, vp); // everything masked: nothing to draw from
  const minP = field<f32>(p, stride, F_MIN_P);
  // min-p: p_i >= minP * p_max  <=>  (l_i - max) / T >= ln(minP).
  const floor = minP > 0 ? max(LOWEST, m + t * <f32>Math.log(minP)) : LOWEST;
  const topK = field<i32>(p, stride, F_TOP_K);
  const topP = field<f32>(p, stride, F_TOP_P);
  const invT: f32 = 1 / t;
  if (topK <= 0 && topP >= 1) {
    return orArgmax(drawPlain(row, vp, m, invT, floor, u, scratch + offCW(<usize>vp), scratch + offTmp(<usize>vp)), row, vp);
  }
  if (topK > 0 && topK <= SMALL_TOP) {
    // Small top-k: the k-th largest logit from an insertion list; the kept set is then every token >= it
    // (ties too) that min-p keeps, and nothing below matters.
    const keys = scratch + offKeys(<usize>vp);
    let cut = floor;
    if (topInsert(row, v, topK, keys) == topK) cut = max(floor, keyValue(load<u64>(keys + (<usize>(topK - 1) << 3))));
    return orArgmax(sampleFrom(row, vp, scratch, m, invT, floor, cut, false, 0, topP, u), row, vp);
  }
  if (topK > 0) {
    // Larger top-k: a cut holding at least k survivors, then the k-th among the candidates.
    const cut = cutForTopK(row, vp, floor, max(floor, m - CUT * t), topK, CUT * t);
    return orArgmax(sampleFrom(row, vp, scratch, m, invT, floor, cut, false, topK, topP, u), row, vp);
  }
  // Top-p: the candidates within CUT of the top and the tail's mass; should the boundary fall in the tail
  // (only with p close to 1 on a flat row), every survivor becomes a candidate.
  let id = sampleFrom(row, vp, scratch, m, invT, floor, max(floor, m - CUT * t), true, 0, topP, u);
  if (id == WIDEN) id = sampleFrom(row, vp, scratch, m, invT, floor, minSurvivor(row, vp, floor), false, 0, topP, u);
  return orArgmax(id, row, vp);
}

/**
 * Whether any of 16 scaled logits x = (l - m) / T reaches exp4's range; when none does, all 16 weights are +0
 * (a grammar's masked tokens are -inf) and skipping them changes no bit of a sum.
 */
// @ts-ignore: decorator
@inline function anyWeight(x0: v128, x1: v128, x2: v128, x3: v128, vlo: v128): bool {
  return v128.any_true(v128.or(v128.or(f32x4.ge(x0, vlo), f32x4.ge(x1, vlo)), v128.or(f32x4.ge(x2, vlo), f32x4.ge(x3, vlo))));
}

// @ts-ignore: decorator
@inline function orArgmax(id: i32, row: usize, vp: i32): i32 {
  return id >= 0 ? id : argmax(row, vp);
}

/**
 * A cut (logit) with at least k survivors >= it, close above the k-th: down from `hi` in doubling steps, then
 * eight halvings, each probe one SIMD count. Returns `floor` when fewer than k survive (top-k keeps them all).
 */
function cutForTopK(row: usize, vp: i32, floor: f32, hi: f32, k: i32, step: f32): f32 {
  if (countGe(row, vp, hi) >= k) return hi;
  if (countGe(row, vp, floor) < k) return floor;
  let lo = max(floor, hi - step);
  while (countGe(row, vp, lo) < k) {
    // Ends: countGe(floor) >= k.
    hi = lo;
    step *= 2;
    lo = max(floor, hi - step);
  }
  for (let j = 0; j < 8; j++) {
    const mid = lo + (hi - lo) * 0.5;
    if (countGe(row, vp, mid) >= k) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Samples among the survivors >= `cut` (the candidates). With `tailKept` (top-p alone), survivors below the cut
 * still count: their mass is summed, and WIDEN comes back when the top-p boundary lies among them. Without it,
 * the cut is at or below the top-k boundary, or no survivor lies below it.
 */
function sampleFrom(row: usize, vp: i32, scratch: usize, m: f32, invT: f32, floor: f32, cut: f32, tailKept: bool, topK: i32, topP: f32, u: f64): i32 {
  const vpu = <usize>vp;
  const cid = scratch;
  const cw = scratch + offCW(vpu);
  const cbin = scratch + offCBin(vpu);
  const keys = scratch + offKeys(vpu);
  const hmass = scratch + offHMass(vpu);
  const hcount = scratch + offHCount(vpu);
  const tmp = scratch + offTmp(vpu);
  const needTail = tailKept && topK <= 0;
  // Bins spread the candidates' range of s = (l - m) / T over HIST_BINS (1/128 each for the usual cut, -16).
  const perUnit = <f32>(HIST_BINS - 1) / max<f32>((m - cut) * invT, 1e-3);
  const n = collect(row, vp, m, invT, floor, cut, needTail, perUnit, cid, cw, cbin, tmp);
  const canWiden = tailKept && cut > floor; // survivors below the cut count for top-p
  let candMass: f64 = 0;
  for (let j: usize = 0; j < <usize>n; j++) candMass += <f64>load<f32>(cw + (j << 2));
  const tailMass = needTail ? max<f64>(0, load<f64>(tmp) - candMass) : 0;
  // No top-k or top-p left (small top-k already applied as the cut): the running sum in id order.
  if (topK <= 0 && topP >= 1) return walk(cid, cw, 0, n, 0, u * candMass);
  memory.fill(hmass, 0, HIST_BINS << 3);
  memory.fill(hcount, 0, HIST_BINS << 2);
  for (let j: usize = 0; j < <usize>n; j++) {
    const b = <usize>load<u16>(cbin + (j << 1));
    store<f64>(hmass + (b << 3), load<f64>(hmass + (b << 3)) + <f64>load<f32>(cw + (j << 2)));
    store<u32>(hcount + (b << 2), load<u32>(hcount + (b << 2)) + 1);
  }
  // The kept set: bins before `lastBin`, then all of it (lastN < 0) or the first lastN of KEYS (sorted).
  let lastBin = HIST_BINS - 1;
  let lastN = -1;
  let mass = candMass + tailMass;
  if (topK > 0) {
    let c: u32 = 0;
    let b = 0;
    while (b < HIST_BINS && c + load<u32>(hcount + (<usize>b << 2)) < <u32>topK) {
      c += load<u32>(hcount + (<usize>b << 2));
      b++;
    }
    if (b < HIST_BINS) {
      // The k-th survivor is in bin b: sort the bin; ties with it are kept too.
      const nb = gatherBin(cbin, n, b, row, cid, keys);
      sortKeys(keys, nb);
      let nk = topK - <i32>c;
      const kth = <u32>(load<u64>(keys + (<usize>(nk - 1) << 3)) >> 32);
      while (nk < nb && <u32>(load<u64>(keys + (<usize>nk << 3)) >> 32) == kth) nk++;
      lastBin = b;
      lastN = nk;
      mass = sumBins(hmass, b) + sumKeys(keys, nk, cw);
    }
  }
  if (topP < 1) {
    const target = <f64>topP * mass;
    let cum: f64 = 0;
    let b = 0;
    while (b < lastBin && cum + load<f64>(hmass + (<usize>b << 3)) < target) {
      cum += load<f64>(hmass + (<usize>b << 3));
      b++;
    }
    if (lastN < 0 && cum + load<f64>(hmass + (<usize>b << 3)) < target && canWiden) return WIDEN;
    let nb = lastN;
    if (b != lastBin || lastN < 0) {
      nb = gatherBin(cbin, n, b, row, cid, keys);
      sortKeys(keys, nb);
    }
    // Keep a token while the mass before it is below the target (the first one always: cum < target here).
    let j = 0;
    while (j < nb && cum < target) {
      cum += <f64>load<f32>(cw + (<usize>keyIndex(load<u64>(keys + (<usize>j << 3))) << 2));
      j++;
    }
    lastBin = b;
    lastN = j;
  }
  const kept = sumBins(hmass, lastBin) + (lastN < 0 ? load<f64>(hmass + (<usize>lastBin << 3)) : sumKeys(keys, lastN, cw));
  return drawBins(cid, cw, cbin, n, row, keys, hmass, lastBin, lastN, u * kept);
}

/**
 * Lists the survivors (logit >= floor) that reach `cut`: CID ids in id order, CW their weights
 * exp((l - m) * invT), CBIN their bins; CBIN is padded with NO_BIN to a multiple of 8. With `needTail`, writes
 * the total weight of every survivor to TMP (f64). 16 logits per step: four independent exp4 chains keep the
 * SIMD units busy where one chain would wait on each f64 add (measured 1.7x).
 */
function collect(
  row: usize, vp: i32, m: f32, invT: f32, floor: f32, cut: f32, needTail: bool, perUnit: f32,
  cid: usize, cw: usize, cbin: usize, tmp: usize,
): i32 {
  const vm = f32x4.splat(m);
  const vt = f32x4.splat(invT);
  const vf = f32x4.splat(floor);
  const vc = f32x4.splat(cut);
  const scale = f32x4.splat(-invT * perUnit);
  const top = f32x4.splat(<f32>(HIST_BINS - 1));
  const magic = f32x4.splat(MAGIC);
  const magicBits = i32x4.splat(reinterpret<i32>(MAGIC));
  const vlo = f32x4.splat(EXP_MIN);
  let acc = f64x2.splat(0);
  let n: usize = 0;
  for (let i: usize = 0; i < <usize>vp; i += 16) {
    const at = row + (i << 2);
    const l0 = v128.load(at);
    const l1 = v128.load(at, 16);
    const l2 = v128.load(at, 32);
    const l3 = v128.load(at, 48);
    const c =
      i32x4.bitmask(f32x4.ge(l0, vc)) |
      (i32x4.bitmask(f32x4.ge(l1, vc)) << 4) |
      (i32x4.bitmask(f32x4.ge(l2, vc)) << 8) |
      (i32x4.bitmask(f32x4.ge(l3, vc)) << 12);
    if (!needTail && c == 0) continue;
    const d0 = f32x4.sub(l0, vm);
    const d1 = f32x4.sub(l1, vm);
    const d2 = f32x4.sub(l2, vm);
    const d3 = f32x4.sub(l3, vm);
    const x0 = f32x4.mul(d0, vt);
    const x1 = f32x4.mul(d1, vt);
    const x2 = f32x4.mul(d2, vt);
    const x3 = f32x4.mul(d3, vt);
    // No candidate and 16 weights of +0: nothing for the tail either.
    if (c == 0 && !anyWeight(x0, x1, x2, x3, vlo)) continue;
    const w0 = v128.and(exp4(x0), f32x4.ge(l0, vf));
    const w1 = v128.and(exp4(x1), f32x4.ge(l1, vf));
    const w2 = v128.and(exp4(x2), f32x4.ge(l2, vf));
    const w3 = v128.and(exp4(x3), f32x4.ge(l3, vf));
    if (needTail) {
      const e = f32x4.add(f32x4.add(w0, w1), f32x4.add(w2, w3));
      acc = f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(f32x4.shuffle(e, e, 2, 3, 0, 1))));
    }
    if (c == 0) continue;
    // TMP + 16: the 16 weights; TMP + 80: the 16 bins, round(min(HIST_BINS - 1, -(l - m) / T * perUnit))
    // by the MAGIC trick (see exp4).
    v128.store(tmp, w0, 16);
    v128.store(tmp, w1, 32);
    v128.store(tmp, w2, 48);
    v128.store(tmp, w3, 64);
    v128.store(tmp, i32x4.sub(f32x4.add(f32x4.pmin(f32x4.mul(d0, scale), top), magic), magicBits), 80);
    v128.store(tmp, i32x4.sub(f32x4.add(f32x4.pmin(f32x4.mul(d1, scale), top), magic), magicBits), 96);
    v128.store(tmp, i32x4.sub(f32x4.add(f32x4.pmin(f32x4.mul(d2, scale), top), magic), magicBits), 112);
    v128.store(tmp, i32x4.sub(f32x4.add(f32x4.pmin(f32x4.mul(d3, scale), top), magic), magicBits), 128);
    let mask = c;
    while (mask != 0) {
      const lane = <usize>ctz(mask);
      mask &= mask - 1;
      store<u32>(cid + (n << 2), <u32>(i + lane));
      store<f32>(cw + (n << 2), load<f32>(tmp + 16 + (lane << 2)));
      store<u16>(cbin + (n << 1), <u16>load<i32>(tmp + 80 + (lane << 2)));
      n++;
    }
  }
  for (let j: usize = 0; j < 8; j++) store<u16>(cbin + ((n + j) << 1), NO_BIN);
  store<f64>(tmp, f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1));
  return <i32>n;
}

/**
 * The draw without top-k/top-p (the kept set is every survivor): one pass sums the weights per block of
 * PLAIN_BLOCK logits into BLOCKS (f64), then the target's block is found and its weights recomputed and walked
 * in id order. No candidate list: a flat row would make it as long as the vocabulary.
 */
function drawPlain(row: usize, vp: i32, m: f32, invT: f32, floor: f32, u: f64, blocks: usize, tmp: usize): i32 {
  const vm = f32x4.splat(m);
  const vt = f32x4.splat(invT);
  const vf = f32x4.splat(floor);
  const vlo = f32x4.splat(EXP_MIN);
  let z: f64 = 0;
  for (let b0: usize = 0; b0 < <usize>vp; b0 += PLAIN_BLOCK) {
    const end = min(b0 + PLAIN_BLOCK, <usize>vp);
    let acc = f64x2.splat(0);
    for (let i = b0; i < end; i += 16) {
      const at = row + (i << 2);
      const l0 = v128.load(at);
      const l1 = v128.load(at, 16);
      const l2 = v128.load(at, 32);
      const l3 = v128.load(at, 48);
      const x0 = f32x4.mul(f32x4.sub(l0, vm), vt);
      const x1 = f32x4.mul(f32x4.sub(l1, vm), vt);
      const x2 = f32x4.mul(f32x4.sub(l2, vm), vt);
      const x3 = f32x4.mul(f32x4.sub(l3, vm), vt);
      if (!anyWeight(x0, x1, x2, x3, vlo)) continue;
      const w0 = v128.and(exp4(x0), f32x4.ge(l0, vf));
      const w1 = v128.and(exp4(x1), f32x4.ge(l1, vf));
      const w2 = v128.and(exp4(x2), f32x4.ge(l2, vf));
      const w3 = v128.and(exp4(x3), f32x4.ge(l3, vf));
      const e = f32x4.add(f32x4.add(w0, w1), f32x4.add(w2, w3));
      acc = f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(f32x4.shuffle(e, e, 2, 3, 0, 1))));
    }
    const sum = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
    store<f64>(blocks + ((b0 / PLAIN_BLOCK) << 3), sum);
    z += sum;
  }
  const target = u * z;
  let cum: f64 = 0;
  let last = -1;
  for (let b0: usize = 0; b0 < <usize>vp; b0 += PLAIN_BLOCK) {
    const sum = load<f64>(blocks + ((b0 / PLAIN_BLOCK) << 3));
    if (sum <= 0) continue;
    if (cum + sum <= target) {
      cum += sum;
      continue;
    }
    const end = min(b0 + PLAIN_BLOCK, <usize>vp);
    for (let i = b0; i < end; i += 4) {
      const l = v128.load(row + (i << 2));
      v128.store(tmp, v128.and(exp4(f32x4.mul(f32x4.sub(l, vm), vt)), f32x4.ge(l, vf)));
      for (let lane: usize = 0; lane < 4; lane++) {
        const x = load<f32>(tmp + (lane << 2));
        if (x <= 0) continue;
        cum += <f64>x;
        last = <i32>(i + lane);
        if (cum > target) return last;
      }
    }
    // Rounding left the target just past this block: go on from its last token.
  }
  return last;
}

/** The candidate where cum + the running weight first exceeds target (if rounding never gets there, the last). */
function walk(cid: usize, cw: usize, from: i32, to: i32, cum: f64, target: f64): i32 {
  let last = -1;
  for (let j = from; j < to; j++) {
    const x = load<f32>(cw + (<usize>j << 2));
    if (x <= 0) continue;
    cum += <f64>x;
    last = load<i32>(cid + (<usize>j << 2));
    if (cum > target) return last;
  }
  return last;
}

/** The draw over the kept set: whole bins before `lastBin`, then all of it (lastN < 0) or the KEYS prefix. */
function drawBins(cid: usize, cw: usize, cbin: usize, n: i32, row: usize, keys: usize, hmass: usize, lastBin: i32, lastN: i32, target: f64): i32 {
  let cum: f64 = 0;
  for (let b = 0; b < lastBin; b++) {
    const s = load<f64>(hmass + (<usize>b << 3));
    if (s <= 0 || cum + s <= target) {
      cum += s;
      continue;
    }
    return walkKeys(cid, cw, keys, gatherBin(cbin, n, b, row, cid, keys), cum, target); // the bin in id order
  }
  return walkKeys(cid, cw, keys, lastN < 0 ? gatherBin(cbin, n, lastBin, row, cid, keys) : lastN, cum, target);
}

/** walk() over the candidates named by keys[0, nk). */
function walkKeys(cid: usize, cw: usize, keys: usize, nk: i32, cum: f64, target: f64): i32 {
  let last = -1;
  for (let j = 0; j < nk; j++) {
    const c = <usize>keyIndex(load<u64>(keys + (<usize>j << 3)));
    const x = load<f32>(cw + (c << 2));
    if (x <= 0) continue;
    cum += <f64>x;
    last = load<i32>(cid + (c << 2));
    if (cum > target) return last;
  }
  return last;
}

function sumBins(hmass: usize, n: i32): f64 {
  let s: f64 = 0;
  for (let b = 0; b < n; b++) s += load<f64>(hmass + (<usize>b << 3));
  return s;
}

function sumKeys(keys: usize, nk: i32, cw: usize): f64 {
  let s: f64 = 0;
  for (let j = 0; j < nk; j++) s += <f64>load<f32>(cw + (<usize>keyIndex(load<u64>(keys + (<usize>j << 3))) << 2));
  return s;
}

/** Writes to KEYS the sort keys of the candidates in bin `b` (low word: candidate index), in id order. */
function gatherBin(cbin: usize, n: i32, b: i32, row: usize, cid: usize, keys: usize): i32 {
  const want = i16x8.splat(<i16>b);
  let nk = 0;
  for (let i: usize = 0; i < <usize>n; i += 8) {
    let mask = i16x8.bitmask(i16x8.eq(v128.load(cbin + (i << 1)), want));
    while (mask != 0) {
      const c = i + <usize>ctz(mask);
      mask &= mask - 1;
      const id = <usize>load<u32>(cid + (c << 2));
      store<u64>(keys + (<usize>nk << 3), sortKey(load<f32>(row + (id << 2)), <u32>c));
      nk++;
    }
  }
  return nk;
}

// ---- xoshiro128** (Blackman & Vigna), the same generator as src/sampling/generator.ts ------------------------

function nextU32(p: usize, stride: usize): u32 {
  const a = slot(p, stride, F_RNG);
  const s0 = load<u32>(a);
  const s1 = load<u32>(a + stride);
  let s2 = load<u32>(a + 2 * stride);
  let s3 = load<u32>(a + 3 * stride);
  const result = rotl<u32>(s1 * 5, 7) * 9;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  store<u32>(a + stride, s1 ^ s2);
  store<u32>(a, s0 ^ s3);
  store<u32>(a + 2 * stride, s2 ^ t);
  store<u32>(a + 3 * stride, rotl<u32>(s3, 11));
  return result;
}

/** Uniform in [0, 1) with 53 random bits from two draws (Generator.uniform). */
function nextUniform(p: usize, stride: usize): f64 {
  const hi = nextU32(p, stride) >>> 5;
  const lo = nextU32(p, stride) >>> 6;
  return (<f64>hi * 67108864 + <f64>lo) / 9007199254740992;
}
