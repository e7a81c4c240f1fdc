// The CPU sampler: samplerRun samples a batch of logits rows, each with its own parameters and generator.
// Every pointer comes from the TS facade (src/sampling/sampler.ts), which owns all allocations.
//
// Stages, per row, in vLLM V1's order (vllm/v1/sample/sampler.py):
//   1. raw logprobs: a row that asks for logprobs is copied aside and its log-sum-exp kept (vLLM's default
//      logprobs_mode "raw_logprobs": the model's distribution before any processing).
//   2. masks and bias: allowed-token whitelist, banned ids (bad words, min-tokens EOS/stop) -> -inf, then the
//      logit bias (+=). Order within the stage does not matter: -inf absorbs any bias.
//      (The facade runs JS logits processors here, between two calls, when a request has some.)
//   3. penalties: repetition over prompt + output ids (divide positive logits, multiply the others), then
//      frequency (x count) and presence (x 1) subtracted over output ids (vllm/model_executor/layers/utils.py).
//   4. sampling: greedy rows (temperature 0) take the argmax, ties to the lowest id. Others: temperature, min-p
//      (relative to the top probability; V1 runs it before top-k/top-p), top-k (every logit >= the k-th largest,
//      ties kept), top-p (descending order, keep a token while the mass before it is < p), then one draw with
//      the row's xoshiro128**.
//   5. logprobs gather: the sampled token's raw logprob and rank (count of logprobs >= its own, as vLLM's
//      batched_count_greater_than), and the top-k raw logprobs.
//
// Stage 4 never sorts the vocabulary. Without top-k/top-p, one pass sums the weights per block and the draw
// walks the block it lands in. Otherwise the work goes to a short list of candidates: the tokens >= the k-th
// largest logit (insertion list behind a SIMD threshold test, k <= 64), or >= a cut found by SIMD counts (larger
// k), or within 16 / T of the top (top-p alone; a few hundred tokens of a typical LLM row, the rest summed in
// registers). Candidates are binned by s = (logit - max) / T with their count and mass; a walk over the bins
// finds the bin holding the k-th token or the top-p boundary, and only that bin is sorted. A top-p boundary below
// the candidates (p near 1 on a flat row) makes every survivor a candidate: exact, slower.
// Determinism: each row reads only its own data and its own generator, and wasm floats (plain SIMD, no relaxed
// ops) round the same everywhere, so a seed gives the same tokens in Node and browsers, in any batch.

import {
  F_ALLOWED, F_BANNED, F_BIAS, F_FREQUENCY, F_LOGPROB, F_LSE, F_NUM_LOGPROBS, F_OUTPUT, F_PRESENCE, F_PROMPT,
  F_RANK, F_RAW, F_REPETITION, F_TOKEN, F_TOP_OUT, NEG_INF, NUM_FIELDS, SMALL_TOP, field, offCount, offKeys,
  offMark, poolAt, scratchBytes, slot,
} from './sampler/layout';
import { sampleRow } from './sampler/draw';
import { keyIndex, sortKey, sortKeys, topInsert } from './sampler/keys';
import { countGe, fill, maxOf, sumExp } from './sampler/vec';

/** Layout check for the facade: the number of per-row fields (assembly/sampler/layout.ts). */
export function samplerNumFields(): i32 {
  return NUM_FIELDS;
}

/** Bytes of scratch the facade allocates (zero-filled) for rows of `vp` floats. */
export function samplerScratchBytes(vp: i32): usize {
  return scratchBytes(<usize>vp);
}

/**
 * Runs stages `first..last` (1..5) on rows r0 <= r < r1 of a batch of `s` rows. Row r's logits are at
 * logits + (r - r0) * vp * 4 (`v` logits, then -inf padding up to `vp`, a multiple of 16), its parameters in
 * `params` (assembly/sampler/layout.ts), its id lists in `pool`; `scratch` has samplerScratchBytes(vp) bytes. The facade calls
 * it row by row, right after copying the row in, so every pass reads a row still in cache; a caller holding all
 * rows in wasm memory can run the whole batch in one call.
 */
export function samplerRun(
  s: i32,
  r0: i32,
  r1: i32,
  v: i32,
  vp: i32,
  logits: usize,
  params: usize,
  pool: usize,
  scratch: usize,
  first: i32,
  last: i32,
): void {
  const stride = <usize>s << 2;
  for (let r = r0; r < r1; r++) {
    const row = logits + <usize>(r - r0) * (<usize>vp << 2);
    const p = params + (<usize>r << 2);
    if (first <= 1 && last >= 1) rawLogprobs(row, vp, p, stride);
    if (first <= 2 && last >= 2) masksAndBias(row, v, p, stride, pool, scratch);
    if (first <= 3 && last >= 3) penalties(row, p, stride, pool, scratch, vp);
    if (first <= 4 && last >= 4) store<i32>(slot(p, stride, F_TOKEN), sampleRow(row, v, vp, p, stride, scratch));
    if (first <= 5 && last >= 5) gatherLogprobs(v, vp, p, stride, scratch);
  }
}

// ---- Stage 1 -------------------------------------------------------------------------------------------------
function rawLogprobs(row: usize, vp: i32, p: usize, stride: usize): void {
  if (field<i32>(p, stride, F_NUM_LOGPROBS) < 0) return;
  const raw = field<usize>(p, stride, F_RAW);
  if (raw != row) memory.copy(raw, row, <usize>vp << 2); // raw == row: stages 2-3 leave this row alone
  const m = maxOf(raw, vp);
  store<f32>(slot(p, stride, F_LSE), m + <f32>Math.log(sumExp(raw, vp, m)));
}

// ---- Stage 2 -------------------------------------------------------------------------------------------------
function masksAndBias(row: usize, v: i32, p: usize, stride: usize, pool: usize, scratch: usize): void {
  const nAllowed = field<i32>(p, stride, F_ALLOWED + 1);
  if (nAllowed > 0) {
    // Save the allowed logits in W, wipe the row, put them back.
    const ids = poolAt(pool, p, stride, F_ALLOWED);
    for (let j = 0; j < nAllowed; j++) {
      store<f32>(scratch + (<usize>j << 2), load<f32>(row + (<usize>load<i32>(ids + (<usize>j << 2)) << 2)));
    }
    fill(row, v, NEG_INF);
    for (let j = 0; j < nAllowed; j++) {
      store<f32>(row + (<usize>load<i32>(ids + (<usize>j << 2)) << 2), load<f32>(scratch + (<usize>j << 2)));
    }
  }
  const nBanned = field<i32>(p, stride, F_BANNED + 1);
  const banned = poolAt(pool, p, stride, F_BANNED);
  for (let j = 0; j < nBanned; j++) store<f32>(row + (<usize>load<i32>(banned + (<usize>j << 2)) << 2), NEG_INF);
  const nBias = field<i32>(p, stride, F_BIAS + 1);
  const bias = poolAt(pool, p, stride, F_BIAS);
  for (let j = 0; j < nBias; j++) {
    const at = row + (<usize>load<i32>(bias + (<usize>j << 2)) << 2);
    store<f32>(at, load<f32>(at) + load<f32>(bias + (<usize>(j + nBias) << 2)));
  }
}

// ---- Stage 3 -------------------------------------------------------------------------------------------------
function penalties(row: usize, p: usize, stride: usize, pool: usize, scratch: usize, vp: i32): void {
  const rep = field<f32>(p, stride, F_REPETITION);
  const out = poolAt(pool, p, stride, F_OUTPUT);
  const nOut = field<i32>(p, stride, F_OUTPUT + 1);
  if (rep != 1) {
    // Each distinct id of prompt + output once: MARK dedupes, then is cleared by the same lists.
    const mark = scratch + offMark(<usize>vp);
    const prompt = poolAt(pool, p, stride, F_PROMPT);
    const nPrompt = field<i32>(p, stride, F_PROMPT + 1);
    repetition(row, mark, prompt, nPrompt, rep);
    repetition(row, mark, out, nOut, rep);
    for (let j = 0; j < nPrompt; j++) store<u8>(mark + <usize>load<i32>(prompt + (<usize>j << 2)), 0);
    for (let j = 0; j < nOut; j++) store<u8>(mark + <usize>load<i32>(out + (<usize>j << 2)), 0);
  }
  const freq = field<f32>(p, stride, F_FREQUENCY);
  const pres = field<f32>(p, stride, F_PRESENCE);
  if (freq == 0 && pres == 0) return;
  const count = scratch + offCount(<usize>vp);
  for (let j = 0; j < nOut; j++) {
    const c = count + (<usize>load<i32>(out + (<usize>j << 2)) << 2);
    store<i32>(c, load<i32>(c) + 1);
  }
  for (let j = 0; j < nOut; j++) {
    const id = <usize>load<i32>(out + (<usize>j << 2));
    const n = load<i32>(count + (id << 2));
    if (n == 0) continue; // a repeated id, already done
    const at = row + (id << 2);
    store<f32>(at, load<f32>(at) - freq * <f32>n - pres);
    store<i32>(count + (id << 2), 0);
  }
}

function repetition(row: usize, mark: usize, ids: usize, n: i32, rep: f32): void {
  for (let j = 0; j < n; j++) {
    const id = <usize>load<i32>(ids + (<usize>j << 2));
    if (load<u8>(mark + id)) continue;
    store<u8>(mark + id, 1);
    const l = load<f32>(row + (id << 2));
    store<f32>(row + (id << 2), l > 0 ? l / rep : l * rep);
  }
}

// ---- Stage 5 -------------------------------------------------------------------------------------------------
function gatherLogprobs(v: i32, vp: i32, p: usize, stride: usize, scratch: usize): void {
  let k = field<i32>(p, stride, F_NUM_LOGPROBS);
  if (k < 0) return;
  const raw = field<usize>(p, stride, F_RAW);
  const lse = field<f32>(p, stride, F_LSE);
  const tok = field<i32>(p, stride, F_TOKEN);
  const x = load<f32>(raw + (<usize>tok << 2));
  store<f32>(slot(p, stride, F_LOGPROB), x - lse);
  let rank = countGe(raw, vp, x);
  if (!(x > NEG_INF)) rank -= vp - v; // the -inf padding
  store<i32>(slot(p, stride, F_RANK), rank);
  if (k == 0) return;
  k = min(k, v);
  const keys = scratch + offKeys(<usize>vp);
  if (k <= SMALL_TOP) k = topInsert(raw, v, k, keys);
  else {
    for (let i = 0; i < v; i++) store<u64>(keys + (<usize>i << 3), sortKey(load<f32>(raw + (<usize>i << 2)), <u32>i));
    sortKeys(keys, v);
  }
  const out = field<usize>(p, stride, F_TOP_OUT);
  for (let j = 0; j < k; j++) {
    const id = keyIndex(load<u64>(keys + (<usize>j << 3)));
    store<i32>(out + (<usize>j << 2), id);
    store<f32>(out + (<usize>(k + j) << 2), load<f32>(raw + (<usize>id << 2)) - lse);
  }
}
