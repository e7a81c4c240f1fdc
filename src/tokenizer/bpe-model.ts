/**
 * The BPE model (`tokenizers` models/bpe): vocabulary and merges loaded once into core.wasm tables, words encoded
 * there in batches (assembly/bpe.ts), results cached per word as upstream does.
 *
 * wasm memory owned by one model (freed by `dispose`):
 *   record    64 B model record read by bpeEncodeWords (field offsets in assembly/bpe.ts), then
 *             byteIds i32[256] (id of each byte's byte-level char, -1 if absent),
 *             fallback i32[256] (id of "<0xAB>" for each byte, -1 if absent),
 *             byteUtf8 u8[256][4] ([length, UTF-8] of each byte's byte-level char)
 *   vocab     tokens' UTF-8 back to back | ends u32[n] | ids i32[n] | hash table 8 B x pow2 >= 2n
 *   merges    16 B x pow2 >= 1.5 x merges: [left, right, rank, merged] hash table
 *   chars     8 B x pow2 >= 2 x single-char tokens: [code point, id] hash table
 *   scratch   50 B x longest word in bytes (symbols, links, merge heap, word bytes)
 *   io        per batch: text bytes, word ends, output ids, output ends (also tokenToId's key)
 */
import type { Core } from '../wasm/core';
import { BYTE_TO_CHAR } from './byte-level';
import { child, expectArray, expectObject, fail, type Json, type JsonAt, optBool, optString } from './json';

const MODE_BYTES = 0;
const MODE_CHARS = 1;
const RECORD_BYTES = 64;
/** Words longer than this (UTF-16 units) are not cached, like upstream's MAX_LENGTH. */
const CACHE_MAX_WORD = 256;
/** Cached words per mode; the oldest entry goes when full. */
const CACHE_CAPACITY = 20_000;
/** An io block larger than this is given back after the batch that needed it. */
const IO_KEEP_BYTES = 8 << 20;

const utf8 = new TextEncoder();

export class BpeModel {
  /** id -> token (sparse where the vocabulary has gaps); its length is max id + 1. */
  readonly tokens: string[];
  /** How many tokens the vocabulary has (`get_vocab_size`), which is where new added-token ids start. */
  size = 0;
  private scratch = 0;
  private scratchCap = 0;
  private io = 0;
  private ioSize = 0;
  private readonly caches = [new Map<string, Int32Array>(), new Map<string, Int32Array>()];

  private constructor(
    private readonly core: Core,
    tokens: string[],
    /** The model record, followed by the byte tables (0 once disposed). */
    private record: number,
    /** The other blocks this model owns. */
    private readonly blocks: number[],
  ) {
    this.tokens = tokens;
  }

  /** Loads tokenizer.json's `model` object (type BPE). */
  static load(core: Core, obj: Json, at: JsonAt): BpeModel {
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      const v = optString(obj, key, at);
      if (v) fail(child(at, key), `a non-empty ${key} (${JSON.stringify(v)}) is not supported`);
    }
    // Vocabulary: checked, then its keys' UTF-8 into wasm and the hash table.
    const vocabAt = child(at, 'vocab');
    const vocabObj = expectObject(obj.vocab, vocabAt);
    const keys = Object.keys(vocabObj);
    const n = keys.length;
    const tokens: string[] = [];
    let units = 0;
    for (let i = 0; i < n; i++) {
      const id = vocabObj[keys[i]];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
        fail(child(vocabAt, keys[i]), `expected a token id, got ${JSON.stringify(id)}`);
      }
      tokens[id] = keys[i];
      units += keys[i].length;
    }
    const record = core.alloc(RECORD_BYTES + 3 * 1024);
    const model = new BpeModel(core, tokens, record, []);
    model.size = n;
    // From here on a malformed field (merges, merge_ranks, unk_token, flags) or a failed allocation gives back what
    // the model holds so far: a tokenizer that fails to load leaves core.wasm as it found it.
    try {
      model.build(obj, at, vocabObj, keys, units);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  }

  /** The wasm tables of a model whose record is allocated (load's second half). */
  private build(obj: Json, at: JsonAt, vocabObj: Json, keys: string[], units: number): void {
    const { core, record } = this;
    const model = this;
    const x = core.exports;
    const n = keys.length;
    const vocabMask = pow2AtLeast(2 * n) - 1;
    const blobCap = align4(units * 3);
    const vocab = core.alloc(blobCap + 8 * n + (vocabMask + 1) * 8);
    model.blocks.push(vocab);
    const blob = vocab;
    const ends = vocab + blobCap;
    const ids = ends + 4 * n;
    const table = ids + 4 * n;
    writeUtf8(core, keys, blob, blobCap, ends);
    {
      const i32 = core.i32();
      for (let i = 0; i < n; i++) i32[(ids >>> 2) + i] = vocabObj[keys[i]] as number;
    }
    x.vocabTableInit(table, vocabMask);
    x.vocabTableBuild(table, vocabMask, blob, ends, n);
    const byteUtf8 = record + RECORD_BYTES + 2048;
    core.i32().set([table, vocabMask, blob, ends, ids, byteUtf8], (record >>> 2) + 10); // tokenToId works from here

    // Merges: resolved to id triples in wasm, then their hash table.
    const merges = mergesOf(expectArray(obj.merges ?? [], child(at, 'merges')), child(at, 'merges'));
    const mergeMask = pow2AtLeast(merges.count * 1.5) - 1;
    const mergeTable = core.alloc((mergeMask + 1) * 16);
    model.blocks.push(mergeTable);
    const mBytesCap = align4(merges.units * 3);
    const mEndsLen = merges.count * (merges.pairForm ? 2 : 1);
    const ranks = mergeRanks(obj.merge_ranks, merges.count, child(at, 'merge_ranks'));
    const tmp = core.alloc(mBytesCap + 4 * mEndsLen + 12 * merges.count + (ranks ? 4 * merges.count : 0));
    try {
      const mEnds = tmp + mBytesCap;
      const triples = mEnds + 4 * mEndsLen;
      writeUtf8(core, merges.strings, tmp, mBytesCap, mEnds);
      const vocabArgs = [table, vocabMask, blob, ends] as const;
      const bad = x.resolveMerges(...vocabArgs, ids, tmp, mEnds, merges.count, merges.pairForm ? 1 : 0, triples);
      if (bad >= 0) badMerge(merges, bad, new Set(keys), child(at, 'merges'));
      x.mergeTableInit(mergeTable, mergeMask);
      const rankPtr = ranks ? triples + 12 * merges.count : 0;
      if (ranks) core.u32().set(ranks, rankPtr >>> 2);
      x.mergeTableBuild(mergeTable, mergeMask, triples, merges.count, rankPtr);
    } finally {
      core.free(tmp);
    }

    // Single-char tokens: the initial symbols of SentencePiece-style words.
    const nChars = x.countSingleChars(blob, ends, n);
    const charMask = pow2AtLeast(2 * nChars) - 1;
    const charTable = core.alloc((charMask + 1) * 8 + 8 * nChars);
    model.blocks.push(charTable);
    const pairs = charTable + (charMask + 1) * 8;
    x.singleCharPairs(blob, ends, ids, n, pairs);
    x.charTableInit(charTable, charMask);
    x.charTableBuild(charTable, charMask, pairs, nChars);

    const unkToken = optString(obj, 'unk_token', at);
    const unk = unkToken === null ? -1 : (model.tokenToId(unkToken) ?? -1);
    const flags =
      (optBool(obj, 'byte_fallback', false) ? 1 : 0) |
      (optBool(obj, 'fuse_unk', false) ? 2 : 0) |
      (optBool(obj, 'ignore_merges', false) ? 4 : 0);
    const byteIds = new Int32Array(256);
    const fallbackIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      byteIds[b] = model.tokenToId(BYTE_TO_CHAR[b]) ?? -1;
      fallbackIds[b] = model.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) ?? -1;
    }
    const r = record >>> 2;
    const b0 = record + RECORD_BYTES;
    const i32 = core.i32();
    i32.set([mergeTable, mergeMask, charTable, charMask, b0, b0 + 1024, unk, flags, 0, 0], r);
    i32.set(byteIds, r + 16);
    i32.set(fallbackIds, r + 16 + 256);
    const u8 = core.u8();
    for (let b = 0; b < 256; b++) {
      const e = utf8.encode(BYTE_TO_CHAR[b]);
      u8.set([e.length, ...e], byteUtf8 + 4 * b);
    }
  }

  /** The vocabulary id of a token string (added tokens aside). */
  tokenToId(token: string): number | undefined {
    this.ensureIo(token.length * 3);
    const len = utf8.encodeInto(token, this.core.u8().subarray(this.io, this.io + this.ioSize)).written;
    const id = this.core.exports.vocabLookup(this.record, this.io, len);
    return id < 0 ? undefined : id;
  }

  /**
   * Appends the ids of each piece to `out`. With `byteLevel`, a piece's UTF-8 bytes are its byte-level symbols;
   * otherwise its code points are (byte fallback and unk as configured).
   */
  encode(pieces: readonly string[], byteLevel: boolean, out: number[]): void {
    const mode = byteLevel ? MODE_BYTES : MODE_CHARS;
    const cache = this.caches[mode];
    // Pass 1: cached words; collect the distinct misses.
    const results: (Int32Array | undefined)[] = new Array(pieces.length);
    const missIndex = new Map<string, number>();
    const misses: string[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const w = pieces[i];
      const hit = cache.get(w);
      if (hit !== undefined) {
        results[i] = hit;
      } else if (!missIndex.has(w)) {
        missIndex.set(w, misses.length);
        misses.push(w);
      }
    }
    // Pass 2: one wasm call for all misses.
    if (misses.length > 0) {
      const encoded = this.encodeBatch(misses, mode);
      for (let i = 0; i < misses.length; i++) this.remember(cache, misses[i], encoded[i]);
      for (let i = 0; i < pieces.length; i++) {
        if (results[i] === undefined) results[i] = encoded[missIndex.get(pieces[i])!];
      }
    }
    for (const ids of results) for (let k = 0; k < ids!.length; k++) out.push(ids![k]);
  }

  /** Gives the wasm memory back; the model is unusable afterwards. */
  dispose(): void {
    for (const p of [this.record, ...this.blocks, this.scratch, this.io]) this.core.free(p);
    this.blocks.length = 0;
    this.record = this.scratch = this.io = 0; // a second dispose frees nothing twice
  }

  private remember(cache: Map<string, Int32Array>, w: string, ids: Int32Array): void {
    if (w.length > CACHE_MAX_WORD) return;
    if (cache.size >= CACHE_CAPACITY) cache.delete(cache.keys().next().value!);
    cache.set(w, ids);
  }

  private encodeBatch(words: readonly string[], mode: number): Int32Array[] {
    const core = this.core;
    let maxUnits = 0;
    let totalUnits = 0;
    for (const w of words) {
      totalUnits += w.length;
      if (w.length > maxUnits) maxUnits = w.length;
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes, and a word has at most one symbol per byte.
    this.ensureScratch(maxUnits * 3);
    const textCap = totalUnits * 3;
    const n = words.length;
    // io layout: text u8[textCap] | word ends u32[n] | out i32[textCap] | out ends u32[n]
    const endsOff = align4(textCap);
    const outOff = endsOff + 4 * n;
    const outEndsOff = outOff + 4 * textCap;
    this.ensureIo(outEndsOff + 4 * n);
    const io = this.io;
    writeUtf8(core, words, io, textCap, io + endsOff);
    core.exports.bpeEncodeWords(this.record, mode, io, io + endsOff, n, io + outOff, io + outEndsOff);
    const i32 = core.i32();
    const u32 = core.u32();
    const outBase = (io + outOff) >>> 2;
    const endsBase = (io + outEndsOff) >>> 2;
    const result: Int32Array[] = new Array(n);
    let start = 0;
    for (let i = 0; i < n; i++) {
      const end = u32[endsBase + i];
      result[i] = i32.slice(outBase + start, outBase + end);
      start = end;
    }
    if (this.ioSize > IO_KEEP_BYTES) {
      core.free(this.io);
      this.io = this.ioSize = 0;
    }
    return result;
  }

  // Both buffers grow by allocating the new block first: if that fails (a huge word or text), the RangeError
  // leaves the old block, its pointer and the record's copy of it untouched, so the model stays usable.
  private ensureScratch(symbols: number): void {
    if (symbols <= this.scratchCap) return;
    const cap = Math.max(64, pow2AtLeast(symbols));
    const scratch = this.core.alloc(cap * 50);
    this.core.free(this.scratch);
    this.scratch = scratch;
    this.scratchCap = cap;
    const i32 = this.core.i32();
    i32[(this.record >>> 2) + 8] = this.scratch;
    i32[(this.record >>> 2) + 9] = cap;
  }

  private ensureIo(bytes: number): void {
    if (bytes <= this.ioSize) return;
    const size = Math.max(4096, pow2AtLeast(bytes));
    const io = this.core.alloc(size);
    this.core.free(this.io);
    this.io = io;
    this.ioSize = size;
  }
}

/**
 * Writes the strings' UTF-8 back to back at `blob` (capacity `cap`) and their cumulative byte ends as u32 at
 * `ends`. One TextEncoder call for all of them: per-string calls cost a microsecond each, too much for 300k merges.
 */
function writeUtf8(core: Core, strings: readonly string[], blob: number, cap: number, ends: number): void {
  const joined = strings.join('');
  const u8 = core.u8();
  const u32 = core.u32();
  // A lone surrogate at a string's edge could pair with its neighbour once joined: encode those one by one.
  if (/[\ud800-\udfff]/u.test(joined)) {
    let pos = 0;
    for (let i = 0; i < strings.length; i++) {
      pos += utf8.encodeInto(strings[i], u8.subarray(blob + pos, blob + cap)).written;
      u32[(ends >>> 2) + i] = pos;
    }
    return;
  }
  const written = utf8.encodeInto(joined, u8.subarray(blob, blob + cap)).written;
  let units = 0;
  for (let i = 0; i < strings.length; i++) u32[(ends >>> 2) + i] = units += strings[i].length;
  core.exports.utf16EndsToUtf8(blob, written, ends, strings.length);
}

interface Merges {
  count: number;
  /** Each merge as "a b" (pairForm false) or as "a", "b" (pairForm true, 2 strings per merge). */
  strings: string[];
  pairForm: boolean;
  /** UTF-16 units in all strings. */
  units: number;
}

/**
 * `merge_ranks` (a webgpu-llm extension, written for GGUF SentencePiece vocabularies by tokenizer/gguf.ts): each
 * merge's rank, equal ranks allowed; absent: a merge's rank is its index.
 */
function mergeRanks(v: unknown, count: number, at: JsonAt): Uint32Array | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length !== count) fail(at, `expected ${count} ranks, one per merge`);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const r = (v as unknown[])[i];
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= 2 ** 31) fail(child(at, i), `expected a rank (a non-negative integer), got ${JSON.stringify(r)}`);
    out[i] = r as number;
  }
  return out;
}

/** tokenizer.json's merges: "a b" strings (older files) or [a, b] pairs (newer ones, whose tokens may hold spaces). */
function mergesOf(list: unknown[], at: JsonAt): Merges {
  const pairForm = list.length > 0 && typeof list[0] !== 'string';
  const strings: string[] = pairForm ? new Array(list.length * 2) : (list as string[]);
  let units = 0;
  for (let i = 0; i < list.length; i++) {
    const m = list[i];
    if (!pairForm && typeof m === 'string') {
      units += m.length;
    } else if (pairForm && Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      strings[2 * i] = m[0];
      strings[2 * i + 1] = m[1];
      units += m[0].length + m[1].length;
    } else {
      fail(child(at, i), `expected ${pairForm ? 'a [left, right] pair' : 'a "left right" string'}, got ${JSON.stringify(m)}`);
    }
  }
  return { count: list.length, strings, pairForm, units };
}

/** Names what is wrong with merge `i`, which wasm rejected. */
function badMerge(merges: Merges, i: number, vocab: Set<string>, at: JsonAt): never {
  let a: string;
  let b: string;
  if (merges.pairForm) {
    [a, b] = [merges.strings[2 * i], merges.strings[2 * i + 1]];
  } else {
    const parts = merges.strings[i].split(' ');
    if (parts.length !== 2) fail(child(at, i), `expected "left right", got ${JSON.stringify(merges.strings[i])}`);
    [a, b] = parts;
  }
  const missing = [a, b, a + b].find((t) => !vocab.has(t));
  fail(child(at, i), `merge ${JSON.stringify([a, b])} uses ${JSON.stringify(missing)}, which is not in the vocab`);
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
