// The sampler's memory layout: the per-row parameter block the facade writes, the scratch offsets, and the
// helpers that read them. Shared by the stages in assembly/sampler.ts and assembly/sampler/*.ts.

// ---- Per-row parameters --------------------------------------------------------------------------------------
// Struct of arrays: field f of row r is the 32-bit word at params + (f * S + r) * 4.
// Pool offsets and lengths count 32-bit words from `pool`. Keep in step with src/sampling/sampler-layout.ts.
export const F_TEMPERATURE = 0; // f32; 0 = greedy (the facade writes 0 below vLLM's 1e-5)
export const F_TOP_K = 1; // i32; 0 = off
export const F_TOP_P = 2; // f32; >= 1 = off
export const F_MIN_P = 3; // f32; 0 = off
export const F_PRESENCE = 4; // f32
export const F_FREQUENCY = 5; // f32
export const F_REPETITION = 6; // f32; 1 = off
export const F_NUM_LOGPROBS = 7; // i32; -1 = none, else k in [0, V]
export const F_RNG = 8; // u32 x 4 (fields 8..11): xoshiro128** state, read and written back
export const F_PROMPT = 12; // offset, length (fields 12, 13): prompt ids, for the repetition penalty
export const F_OUTPUT = 14; // offset, length: output ids, for the penalties
export const F_BIAS = 16; // offset, length n: ids at [off, off + n), f32 biases at [off + n, off + 2n)
export const F_ALLOWED = 18; // offset, length: allowed ids (length 0 = all allowed)
export const F_BANNED = 20; // offset, length: ids set to -inf
export const F_RAW = 22; // byte pointer of the raw row for stage 5: a copy, or the row itself if nothing edits it
export const F_TOP_OUT = 23; // byte pointer: top ids i32[k], then their logprobs f32[k]
export const F_TOKEN = 24; // out i32: the sampled id
export const F_LOGPROB = 25; // out f32: its raw logprob
export const F_RANK = 26; // out i32: its rank in the raw distribution
export const F_LSE = 27; // f32: log-sum-exp of the raw row (stage 1 -> 5)
export const NUM_FIELDS = 28;

// ---- Scratch (one region, reused row after row; offsets below) --------------------------------------------
export const HIST_BINS = 2048;
export const CUT: f32 = 16; // candidates: s >= -CUT (e^-16 = 1.1e-7 of the top token's probability); the rest is the tail
export const NO_BIN: u16 = 0xffff; // CBIN padding, never a bin
export const SMALL_TOP = 64; // top-k up to this k: an insertion list (sampling and logprobs); logprobs beyond: a sort
export const WIDEN = -2; // sampleFrom: the top-p boundary lies below the candidates, make every survivor one
export const PLAIN_BLOCK: usize = 256; // logits per block sum in drawPlain (a multiple of 16)

export const EPS: f32 = 1e-5;
export const NEG_INF: f32 = -Infinity;
export const LOWEST: f32 = -3.4028234663852886e38;

/**
 * Scratch for rows of `vp` floats (the vocabulary rounded up to 16; the facade pads with -inf):
 *   CID u32[vp] candidate ids (id order) | CW f32[vp] their weights | CBIN u16[vp + 8] their bins |
 *   KEYS u64[vp] sort keys | HMASS f64[HIST_BINS] | HCOUNT u32[HIST_BINS] | TMP 160 B | MARK u8[vp] | COUNT i32[vp]
 * MARK and COUNT must start zeroed (the facade zero-fills); every row leaves them zeroed.
 */
export function scratchBytes(vp: usize): usize {
  return offCount(vp) + (vp << 2);
}

// @ts-ignore: decorator
@inline export function offCW(vp: usize): usize { return vp << 2; }
// @ts-ignore: decorator
@inline export function offCBin(vp: usize): usize { return vp << 3; }
// @ts-ignore: decorator
@inline export function offKeys(vp: usize): usize { return (vp << 3) + ((((vp + 8) << 1) + 15) & ~15); }
// @ts-ignore: decorator
@inline export function offHMass(vp: usize): usize { return offKeys(vp) + (vp << 3); }
// @ts-ignore: decorator
@inline export function offHCount(vp: usize): usize { return offHMass(vp) + (HIST_BINS << 3); }
// @ts-ignore: decorator
@inline export function offTmp(vp: usize): usize { return offHCount(vp) + (HIST_BINS << 2); }
// @ts-ignore: decorator
@inline export function offMark(vp: usize): usize { return offTmp(vp) + 160; }
// @ts-ignore: decorator
@inline export function offCount(vp: usize): usize { return offMark(vp) + ((vp + 15) & ~15); }

/** Address of field f of the row whose first field is at p (fields are `stride` bytes apart). */
// @ts-ignore: decorator
@inline export function slot(p: usize, stride: usize, f: i32): usize {
  return p + <usize>f * stride;
}

// @ts-ignore: decorator
@inline export function field<T>(p: usize, stride: usize, f: i32): T {
  return load<T>(slot(p, stride, f));
}

// @ts-ignore: decorator
@inline export function poolAt(pool: usize, p: usize, stride: usize, f: i32): usize {
  return pool + (<usize>field<i32>(p, stride, f) << 2);
}
