// Byte-pair encoding over linear memory: the merge loop of Hugging Face `tokenizers` (models/bpe/word.rs), the
// byte-level and byte-fallback initial symbols, and the byte-level decoder's char -> byte mapping.
// Every pointer comes from the TS facade (src/tokenizer/bpe-model.ts), which owns all allocations.
import { vocabFind } from './vocab';

// ---- Hash tables -------------------------------------------------------------------------------------------
// Merge table: open addressing, linear probing, `mask + 1` (a power of two) entries of 16 bytes:
//   [left id u32, right id u32, rank u32, merged id u32]; an empty slot has left = 0xFFFFFFFF.
// Char table: `mask + 1` entries of 8 bytes: [code point u32, id u32]; an empty slot has cp = 0xFFFFFFFF.

const EMPTY: u32 = 0xffffffff;

// A 32-bit finaliser (murmur3/lowbias32 style): consecutive ids must not cluster under linear probing.
// @ts-ignore: decorator
@inline function mix(a: u32, b: u32): u32 {
  let h = a * 0x9e3779b1 + (b ^ 0x7f4a7c15) * 0x85ebca77;
  h ^= h >>> 16;
  h *= 0x7feb352d;
  h ^= h >>> 15;
  h *= 0x846ca68b;
  h ^= h >>> 16;
  return h;
}

/** Marks every slot of a merge table of `mask + 1` entries empty. */
export function mergeTableInit(table: usize, mask: u32): void {
  memory.fill(table, 0xff, (<usize>mask + 1) << 4);
}

/**
 * Inserts `n` merges given as u32 triples [left, right, merged] in rank order (rank = index, or ranks[index] when
 * `ranks` is not 0: equal ranks then merge leftmost first, as llama.cpp's SentencePiece does for equal scores). A
 * repeated pair keeps the later rank, as Rust's `HashMap::collect` does in `tokenizers`.
 */
export function mergeTableBuild(table: usize, mask: u32, triples: usize, n: u32, ranks: usize): void {
  for (let i: u32 = 0; i < n; i++) {
    const t = triples + (<usize>i) * 12;
    const r = ranks != 0 ? load<u32>(ranks + (<usize>i << 2)) : i;
    const left = load<u32>(t);
    const right = load<u32>(t, 4);
    const merged = load<u32>(t, 8);
    let slot = mix(left, right) & mask;
    while (true) {
      const e = table + (<usize>slot << 4);
      const l = load<u32>(e);
      if (l == EMPTY || (l == left && load<u32>(e, 4) == right)) {
        store<u32>(e, left);
        store<u32>(e, right, 4);
        store<u32>(e, r, 8);
        store<u32>(e, merged, 12);
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
}

/** The entry address of pair (left, right), or 0 when the pair does not merge. */
// @ts-ignore: decorator
@inline function findMerge(table: usize, mask: u32, left: u32, right: u32): usize {
  let slot = mix(left, right) & mask;
  while (true) {
    const e = table + (<usize>slot << 4);
    const l = load<u32>(e);
    if (l == left && load<u32>(e, 4) == right) return e;
    if (l == EMPTY) return 0;
    slot = (slot + 1) & mask;
  }
}

/** Marks every slot of a char table of `mask + 1` entries empty. */
export function charTableInit(table: usize, mask: u32): void {
  memory.fill(table, 0xff, (<usize>mask + 1) << 3);
}

/** Inserts `n` u32 pairs [code point, id]: the vocabulary's single-character tokens. */
export function charTableBuild(table: usize, mask: u32, pairs: usize, n: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    const cp = load<u32>(pairs + (<usize>i << 3));
    const id = load<u32>(pairs + (<usize>i << 3), 4);
    let slot = mix(cp, 0) & mask;
    while (true) {
      const e = table + (<usize>slot << 3);
      const c = load<u32>(e);
      if (c == EMPTY || c == cp) {
        store<u32>(e, cp);
        store<u32>(e, id, 4);
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
}

// @ts-ignore: decorator
@inline function findChar(table: usize, mask: u32, cp: u32): i32 {
  let slot = mix(cp, 0) & mask;
  while (true) {
    const e = table + (<usize>slot << 3);
    const c = load<u32>(e);
    if (c == cp) return load<i32>(e, 4);
    if (c == EMPTY) return -1;
    slot = (slot + 1) & mask;
  }
}

// ---- Model record --------------------------------------------------------------------------------------------
// Written once per tokenizer by the facade; byte offsets of its u32/i32 fields:
const M_MERGES: usize = 0; //       merge table address
const M_MERGE_MASK: usize = 4; //   merge table entries - 1
const M_CHARS: usize = 8; //        char table address
const M_CHAR_MASK: usize = 12; //   char table entries - 1
const M_BYTE_IDS: usize = 16; //    i32[256]: id of the byte-level char of each byte, -1 if absent
const M_FALLBACK_IDS: usize = 20; // i32[256]: id of "<0xAB>" for each byte, -1 if absent
const M_UNK: usize = 24; //         unk id, -1 when the model has none
const M_FLAGS: usize = 28; //       bit 0: byte_fallback, bit 1: fuse_unk, bit 2: ignore_merges
const M_SCRATCH: usize = 32; //     scratch address, sized by the facade for the longest word (see below)
const M_SCRATCH_CAP: usize = 36; // scratch capacity in symbols (a multiple of 8)
const M_VOCAB: usize = 40; //       vocabulary table (assembly/vocab.ts) and its mask, blob, ends, ids
const M_VOCAB_MASK: usize = 44;
const M_VOCAB_BLOB: usize = 48;
const M_VOCAB_ENDS: usize = 52;
const M_VOCAB_IDS: usize = 56;
const M_BYTE_UTF8: usize = 60; //   u8[256][4]: [length, UTF-8 bytes] of each byte's byte-level char

/** Word modes of `bpeEncodeWords`. */
const MODE_BYTES: u32 = 0; // each UTF-8 byte is a byte-level char (GPT-2 style vocabularies)
// MODE_CHARS = 1: each code point is a char; missing ones use byte fallback or unk (SentencePiece style)

// Scratch layout for capacity N symbols (a word of B bytes has at most B symbols):
//   c: i32[N] symbol ids (-1 once merged away), prev: i32[N], next: i32[N] (linked list, -1 = none),
//   heap keys: u64[3N] (rank << 32 | position), heap ids: i32[3N] (the merge's new id),
//   word bytes: u8[2N] (a byte-level word spelt in byte-level chars, for the ignore_merges lookup).
// A word of n symbols pushes at most n - 1 initial merges plus 2 per merge (at most n - 1 merges): < 3n.

/** The id of the token spelt by p[0..len), or -1. */
export function vocabLookup(model: usize, p: usize, len: u32): i32 {
  const idx = vocabFind(
    <usize>load<u32>(model, M_VOCAB), load<u32>(model, M_VOCAB_MASK), <usize>load<u32>(model, M_VOCAB_BLOB),
    <usize>load<u32>(model, M_VOCAB_ENDS), p, len, 0, 0,
  );
  return idx < 0 ? -1 : load<i32>(<usize>load<u32>(model, M_VOCAB_IDS) + (<usize>idx << 2));
}

/** ignore_merges: a word that is a token as a whole is that token (tiktoken's rule, used by Llama-3). */
function wholeWord(model: usize, mode: u32, p: usize, len: u32, wordBytes: usize): i32 {
  if (mode != MODE_BYTES) return vocabLookup(model, p, len);
  const utf8 = <usize>load<u32>(model, M_BYTE_UTF8);
  let w: u32 = 0;
  for (let i: u32 = 0; i < len; i++) {
    const e = utf8 + ((<usize>load<u8>(p + i)) << 2);
    const l = <u32>load<u8>(e);
    store<u8>(wordBytes + w, load<u8>(e, 1));
    if (l == 2) store<u8>(wordBytes + w + 1, load<u8>(e, 2));
    w += l;
  }
  return vocabLookup(model, wordBytes, w);
}

/**
 * Encodes `nWords` words whose bytes lie back to back at `text`, word w ending at byte `wordEnds[w]` (u32).
 * Writes the ids (i32) to `out` and, for each word, the running id count after it to `outEnds[w]` (u32).
 * Returns the total id count (at most the total byte count, which bounds `out`).
 */
export function bpeEncodeWords(
  model: usize,
  mode: u32,
  text: usize,
  wordEnds: usize,
  nWords: u32,
  out: usize,
  outEnds: usize,
): u32 {
  const cap = <usize>load<u32>(model, M_SCRATCH_CAP);
  const sc = <usize>load<u32>(model, M_SCRATCH);
  const cPtr = sc;
  const prevPtr = sc + (cap << 2);
  const nextPtr = sc + (cap << 3);
  const keyPtr = sc + cap * 12;
  const idPtr = keyPtr + cap * 24;
  const wordBytes = idPtr + cap * 12;
  const ignoreMerges = (load<u32>(model, M_FLAGS) & 4) != 0;
  let start: u32 = 0;
  let o: u32 = 0;
  for (let w: u32 = 0; w < nWords; w++) {
    const end = load<u32>(wordEnds + (<usize>w << 2));
    if (ignoreMerges) {
      const id = wholeWord(model, mode, text + start, end - start, wordBytes);
      if (id >= 0) {
        store<i32>(out + (<usize>o << 2), id);
        o++;
        store<u32>(outEnds + (<usize>w << 2), o);
        start = end;
        continue;
      }
    }
    const n = initSymbols(model, mode, text + start, end - start, cPtr, prevPtr, nextPtr);
    if (n > 1) mergeAll(model, n, cPtr, prevPtr, nextPtr, keyPtr, idPtr);
    if (n > 0) {
      let i: i32 = 0;
      while (i >= 0) {
        store<i32>(out + (<usize>o << 2), load<i32>(cPtr + (<usize>i << 2)));
        o++;
        i = load<i32>(nextPtr + (<usize>i << 2));
      }
    }
    store<u32>(outEnds + (<usize>w << 2), o);
    start = end;
  }
  return o;
}

// @ts-ignore: decorator
@inline function push(cPtr: usize, n: i32, id: i32): i32 {
  store<i32>(cPtr + (<usize>n << 2), id);
  return n + 1;
}

/**
 * The initial symbols of one word, as `BPE::merge_word` builds them: a char found in the vocabulary is a symbol;
 * otherwise its UTF-8 bytes as "<0xAB>" tokens when byte_fallback has them all; otherwise unk (consecutive unks
 * fused into one when fuse_unk), or nothing when the model has no unk. A pending unk is flushed only before the
 * next known char or at the end, byte-fallback symbols included, exactly as upstream does.
 */
function initSymbols(model: usize, mode: u32, p: usize, len: u32, cPtr: usize, prevPtr: usize, nextPtr: usize): i32 {
  const unk = load<i32>(model, M_UNK);
  const flags = load<u32>(model, M_FLAGS);
  const byteFallback = (flags & 1) != 0 && mode != MODE_BYTES;
  const fuseUnk = (flags & 2) != 0;
  const byteIds = <usize>load<u32>(model, M_BYTE_IDS);
  const fallbackIds = <usize>load<u32>(model, M_FALLBACK_IDS);
  const chars = <usize>load<u32>(model, M_CHARS);
  const charMask = load<u32>(model, M_CHAR_MASK);
  let n: i32 = 0;
  let pendingUnk = false;
  let i: u32 = 0;
  while (i < len) {
    const b0 = <u32>load<u8>(p + i);
    let l: u32 = 1;
    let id: i32;
    if (mode == MODE_BYTES) {
      id = load<i32>(byteIds + (<usize>b0 << 2));
    } else {
      let cp = b0;
      if (b0 >= 0xf0) {
        l = 4;
        cp = ((b0 & 0x07) << 18) | ((<u32>load<u8>(p + i + 1) & 0x3f) << 12) |
          ((<u32>load<u8>(p + i + 2) & 0x3f) << 6) | (<u32>load<u8>(p + i + 3) & 0x3f);
      } else if (b0 >= 0xe0) {
        l = 3;
        cp = ((b0 & 0x0f) << 12) | ((<u32>load<u8>(p + i + 1) & 0x3f) << 6) | (<u32>load<u8>(p + i + 2) & 0x3f);
      } else if (b0 >= 0xc0) {
        l = 2;
        cp = ((b0 & 0x1f) << 6) | (<u32>load<u8>(p + i + 1) & 0x3f);
      }
      if (i + l > len) l = len - i; // truncated input: never read past the word
      id = findChar(chars, charMask, cp);
    }
    if (id >= 0) {
      if (pendingUnk) {
        n = push(cPtr, n, unk);
        pendingUnk = false;
      }
      n = push(cPtr, n, id);
    } else {
      let done = false;
      if (byteFallback) {
        let all = true;
        for (let k: u32 = 0; k < l; k++) {
          if (load<i32>(fallbackIds + ((<usize>load<u8>(p + i + k)) << 2)) < 0) {
            all = false;
            break;
          }
        }
        if (all) {
          for (let k: u32 = 0; k < l; k++) n = push(cPtr, n, load<i32>(fallbackIds + ((<usize>load<u8>(p + i + k)) << 2)));
          done = true;
        }
      }
      if (!done && unk >= 0) {
        if (pendingUnk && !fuseUnk) n = push(cPtr, n, unk);
        pendingUnk = true;
      }
    }
    i += l;
  }
  if (pendingUnk) n = push(cPtr, n, unk);
  for (let k: i32 = 0; k < n; k++) {
    store<i32>(prevPtr + (<usize>k << 2), k - 1);
    store<i32>(nextPtr + (<usize>k << 2), k + 1 < n ? k + 1 : -1);
  }
  return n;
}

// ---- Merge loop ----------------------------------------------------------------------------------------------
// Word::merge_all: a min-heap of candidate merges ordered by (rank, position). A popped entry is stale when its
// left symbol was merged away, has no right neighbour any more, or the current pair no longer merges into the
// entry's id; otherwise the pair merges and the new pairs with both neighbours are pushed. O(n log n) per word.

function mergeAll(model: usize, n: i32, cPtr: usize, prevPtr: usize, nextPtr: usize, keyPtr: usize, idPtr: usize): void {
  const table = <usize>load<u32>(model, M_MERGES);
  const mask = load<u32>(model, M_MERGE_MASK);
  let size: i32 = 0;
  for (let i: i32 = 0; i + 1 < n; i++) {
    const e = findMerge(table, mask, load<u32>(cPtr + (<usize>i << 2)), load<u32>(cPtr + (<usize>(i + 1) << 2)));
    if (e != 0) size = heapPush(keyPtr, idPtr, size, ((<u64>load<u32>(e, 8)) << 32) | <u64>i, load<i32>(e, 12));
  }
  while (size > 0) {
    const key = load<u64>(keyPtr);
    const newId = load<i32>(idPtr);
    size = heapPop(keyPtr, idPtr, size);
    const pos = <i32>(key & 0xffffffff);
    const left = load<i32>(cPtr + (<usize>pos << 2));
    if (left < 0) continue; // merged away
    const nx = load<i32>(nextPtr + (<usize>pos << 2));
    if (nx < 0) continue; // last symbol
    const right = load<i32>(cPtr + (<usize>nx << 2));
    const cur = findMerge(table, mask, <u32>left, <u32>right);
    if (cur == 0 || load<i32>(cur, 12) != newId) continue; // stale entry
    // Merge `nx` into `pos`.
    store<i32>(cPtr + (<usize>pos << 2), newId);
    store<i32>(cPtr + (<usize>nx << 2), -1);
    const nn = load<i32>(nextPtr + (<usize>nx << 2));
    store<i32>(nextPtr + (<usize>pos << 2), nn);
    if (nn >= 0) store<i32>(prevPtr + (<usize>nn << 2), pos);
    const pv = load<i32>(prevPtr + (<usize>pos << 2));
    if (pv >= 0) {
      const e = findMerge(table, mask, load<u32>(cPtr + (<usize>pv << 2)), <u32>newId);
      if (e != 0) size = heapPush(keyPtr, idPtr, size, ((<u64>load<u32>(e, 8)) << 32) | <u64>pv, load<i32>(e, 12));
    }
    if (nn >= 0) {
      const e = findMerge(table, mask, <u32>newId, load<u32>(cPtr + (<usize>nn << 2)));
      if (e != 0) size = heapPush(keyPtr, idPtr, size, ((<u64>load<u32>(e, 8)) << 32) | <u64>pos, load<i32>(e, 12));
    }
  }
}

function heapPush(keyPtr: usize, idPtr: usize, size: i32, key: u64, id: i32): i32 {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pk = load<u64>(keyPtr + (<usize>parent << 3));
    if (pk <= key) break;
    store<u64>(keyPtr + (<usize>i << 3), pk);
    store<i32>(idPtr + (<usize>i << 2), load<i32>(idPtr + (<usize>parent << 2)));
    i = parent;
  }
  store<u64>(keyPtr + (<usize>i << 3), key);
  store<i32>(idPtr + (<usize>i << 2), id);
  return size + 1;
}

/** Removes the root; returns the new size. */
function heapPop(keyPtr: usize, idPtr: usize, size: i32): i32 {
  const last = size - 1;
  if (last == 0) return 0;
  const key = load<u64>(keyPtr + (<usize>last << 3));
  const id = load<i32>(idPtr + (<usize>last << 2));
  let i: i32 = 0;
  while (true) {
    let child = 2 * i + 1;
    if (child >= last) break;
    let ck = load<u64>(keyPtr + (<usize>child << 3));
    if (child + 1 < last) {
      const rk = load<u64>(keyPtr + (<usize>(child + 1) << 3));
      if (rk < ck) {
        child++;
        ck = rk;
      }
    }
    if (key <= ck) break;
    store<u64>(keyPtr + (<usize>i << 3), ck);
    store<i32>(idPtr + (<usize>i << 2), load<i32>(idPtr + (<usize>child << 2)));
    i = child;
  }
  store<u64>(keyPtr + (<usize>i << 3), key);
  store<i32>(idPtr + (<usize>i << 2), id);
  return last;
}

// ---- Byte-level decoding -------------------------------------------------------------------------------------

/**
 * The ByteLevel decoder's hot loop: `n` tokens as UTF-8 at `src` (token t ends at byte `ends[t]`, u32) become raw
 * bytes at `dst` (capacity >= the source's byte count). `table` (i16[tableLen]) maps a byte-level char's code
 * point to its byte, -1 when it is none; a token with any other char keeps its own UTF-8 bytes, as upstream does.
 * Returns the byte count written.
 */
export function byteLevelDecode(src: usize, ends: usize, n: u32, table: usize, tableLen: u32, dst: usize): u32 {
  let s: u32 = 0;
  let o: u32 = 0;
  for (let t: u32 = 0; t < n; t++) {
    const e = load<u32>(ends + (<usize>t << 2));
    let i = s;
    let w = o;
    let ok = true;
    while (i < e) {
      const b0 = <u32>load<u8>(src + i);
      let cp = b0;
      let l: u32 = 1;
      if (b0 >= 0xe0) {
        ok = false; // byte-level chars are all below U+0800
        break;
      } else if (b0 >= 0xc0) {
        l = 2;
        cp = ((b0 & 0x1f) << 6) | (<u32>load<u8>(src + i + 1) & 0x3f);
      }
      const v = cp < tableLen ? load<i16>(table + (<usize>cp << 1)) : <i16>-1;
      if (v < 0) {
        ok = false;
        break;
      }
      store<u8>(dst + w, <u8>v);
      w++;
      i += l;
    }
    if (ok) {
      o = w;
    } else {
      memory.copy(dst + o, src + s, e - s);
      o += e - s;
    }
    s = e;
  }
  return o;
}
