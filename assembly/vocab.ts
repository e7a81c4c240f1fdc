// The vocabulary as a byte-string hash table, and what is built from it at load time: merges resolved to ids
// and the single-char table. Doing this here rather than with JS Maps keeps loading a 150k-token vocabulary with
// as many merges to tens of milliseconds.
//
// Vocabulary layout (all from the facade): `blob` holds the tokens' UTF-8 back to back, token i ending at byte
// `ends[i]` (u32; it starts at ends[i - 1], or 0), `ids[i]` (i32) is its id. The table has `mask + 1` entries of
// 8 bytes: [FNV-1a hash u32, token index u32]; an empty slot has index 0xFFFFFFFF.

const EMPTY: u32 = 0xffffffff;
const FNV_OFFSET: u32 = 2166136261;

// @ts-ignore: decorator
@inline function fnv(p: usize, len: u32, h: u32): u32 {
  for (let i: u32 = 0; i < len; i++) h = (h ^ <u32>load<u8>(p + i)) * 16777619;
  return h;
}

// @ts-ignore: decorator
@inline function slotOf(h: u32, mask: u32): u32 {
  h ^= h >>> 16;
  h *= 0x7feb352d;
  h ^= h >>> 15;
  return h & mask;
}

// @ts-ignore: decorator
@inline function startOf(ends: usize, i: u32): u32 {
  return i == 0 ? 0 : load<u32>(ends + ((<usize>i - 1) << 2));
}

/** Marks every slot empty. */
export function vocabTableInit(table: usize, mask: u32): void {
  memory.fill(table, 0xff, (<usize>mask + 1) << 3);
}

/** Inserts tokens 0..n-1 (distinct strings, as JSON object keys are). */
export function vocabTableBuild(table: usize, mask: u32, blob: usize, ends: usize, n: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    const s = startOf(ends, i);
    const h = fnv(blob + s, load<u32>(ends + (<usize>i << 2)) - s, FNV_OFFSET);
    let slot = slotOf(h, mask);
    while (load<u32>(table + (<usize>slot << 3), 4) != EMPTY) slot = (slot + 1) & mask;
    store<u32>(table + (<usize>slot << 3), h);
    store<u32>(table + (<usize>slot << 3), i, 4);
  }
}

/**
 * The index of the token whose bytes are p1[0..l1) followed by p2[0..l2), or -1. (Two parts so a merge's result
 * "a" + "b" is found without copying.)
 */
export function vocabFind(table: usize, mask: u32, blob: usize, ends: usize, p1: usize, l1: u32, p2: usize, l2: u32): i32 {
  const h = fnv(p2, l2, fnv(p1, l1, FNV_OFFSET));
  let slot = slotOf(h, mask);
  while (true) {
    const e = table + (<usize>slot << 3);
    const idx = load<u32>(e, 4);
    if (idx == EMPTY) return -1;
    if (load<u32>(e) == h) {
      const s = startOf(ends, idx);
      if (load<u32>(ends + (<usize>idx << 2)) - s == l1 + l2 && memory.compare(blob + s, p1, l1) == 0 &&
        memory.compare(blob + s + l1, p2, l2) == 0) return <i32>idx;
    }
    slot = (slot + 1) & mask;
  }
}

/**
 * Resolves `n` merges to u32 triples [left id, right id, merged id] at `out`. With `pairForm` 0, merge i is the
 * string "a b" ending at byte `mergeEnds[i]`; with 1, "a" ends at `mergeEnds[2i]` and "b" at `mergeEnds[2i + 1]`.
 * Returns -1, or the index of the first merge that is malformed or names a token missing from the vocabulary.
 */
export function resolveMerges(
  table: usize,
  mask: u32,
  blob: usize,
  ends: usize,
  ids: usize,
  merges: usize,
  mergeEnds: usize,
  n: u32,
  pairForm: u32,
  out: usize,
): i32 {
  let pos: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let a = pos;
    let aEnd: u32;
    let b: u32;
    let bEnd: u32;
    if (pairForm != 0) {
      aEnd = load<u32>(mergeEnds + (<usize>i << 3));
      b = aEnd;
      bEnd = load<u32>(mergeEnds + (<usize>i << 3), 4);
    } else {
      bEnd = load<u32>(mergeEnds + (<usize>i << 2));
      aEnd = a;
      while (aEnd < bEnd && load<u8>(merges + aEnd) != 0x20) aEnd++;
      if (aEnd == bEnd) return <i32>i; // no space
      b = aEnd + 1;
      for (let k = b; k < bEnd; k++) if (load<u8>(merges + k) == 0x20) return <i32>i; // more than one
    }
    pos = bEnd;
    const left = vocabFind(table, mask, blob, ends, merges + a, aEnd - a, 0, 0);
    const right = vocabFind(table, mask, blob, ends, merges + b, bEnd - b, 0, 0);
    const merged = vocabFind(table, mask, blob, ends, merges + a, aEnd - a, merges + b, bEnd - b);
    if (left < 0 || right < 0 || merged < 0) return <i32>i;
    const t = out + (<usize>i) * 12;
    store<i32>(t, load<i32>(ids + (<usize>left << 2)));
    store<i32>(t, load<i32>(ids + (<usize>right << 2)), 4);
    store<i32>(t, load<i32>(ids + (<usize>merged << 2)), 8);
  }
  return -1;
}

/** The code point of a token that is exactly one char, or -1. */
function singleChar(p: usize, len: u32): i32 {
  if (len == 0 || len > 4) return -1;
  const b0 = <u32>load<u8>(p);
  const want: u32 = b0 < 0x80 ? 1 : b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : 2;
  if (want != len) return -1;
  if (len == 1) return <i32>b0;
  if (len == 2) return <i32>(((b0 & 0x1f) << 6) | (<u32>load<u8>(p + 1) & 0x3f));
  if (len == 3) return <i32>(((b0 & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6) | (<u32>load<u8>(p + 2) & 0x3f));
  return <i32>(((b0 & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12) | ((<u32>load<u8>(p + 2) & 0x3f) << 6) |
    (<u32>load<u8>(p + 3) & 0x3f));
}

/** How many tokens are a single char (to size the char table). */
export function countSingleChars(blob: usize, ends: usize, n: u32): u32 {
  let count: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const s = startOf(ends, i);
    if (singleChar(blob + s, load<u32>(ends + (<usize>i << 2)) - s) >= 0) count++;
  }
  return count;
}

/** Writes [code point, id] u32 pairs of the single-char tokens to `out`; returns their count. */
export function singleCharPairs(blob: usize, ends: usize, ids: usize, n: u32, out: usize): u32 {
  let count: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const s = startOf(ends, i);
    const cp = singleChar(blob + s, load<u32>(ends + (<usize>i << 2)) - s);
    if (cp >= 0) {
      store<i32>(out + (<usize>count << 3), cp);
      store<i32>(out + (<usize>count << 3), load<i32>(ids + (<usize>i << 2)), 4);
      count++;
    }
  }
  return count;
}

/**
 * Turns `n` cumulative UTF-16 offsets at `ends` (u32, in place) into byte offsets into `blob`, the UTF-8 of the
 * strings joined (TextEncoder output, so a 4-byte sequence is 2 UTF-16 units and any other char 1).
 */
export function utf16EndsToUtf8(blob: usize, byteLen: u32, ends: usize, n: u32): void {
  let b: u32 = 0;
  let u: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const target = load<u32>(ends + (<usize>i << 2));
    while (u < target && b < byteLen) {
      const b0 = <u32>load<u8>(blob + b);
      if (b0 < 0x80) {
        b += 1;
        u += 1;
      } else if (b0 >= 0xf0) {
        b += 4;
        u += 2;
      } else {
        b += b0 >= 0xe0 ? 3 : 2;
        u += 1;
      }
    }
    store<u32>(ends + (<usize>i << 2), b);
  }
}
