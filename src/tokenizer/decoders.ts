/**
 * Decoders of `tokenizers` (decoders/*.rs): each maps the list of token strings to a new list (`decode_chain`);
 * the tokenizer joins the final list. Added tokens pass through the decoder like any other, as upstream does.
 */
import type { Core } from '../wasm/core';
import { CHAR_TO_BYTE } from './byte-level';
import { child, expectArray, expectObject, expectString, fail, type Json, type JsonAt, optBool, optInt, typeOf, unsupported } from './json';
import { hfPattern } from './regex';

export type Decoder = (tokens: string[]) => string[];

/** Like Rust's `from_utf8_lossy`: invalid sequences become U+FFFD, and a leading BOM is kept. */
const lossy = new TextDecoder('utf-8', { ignoreBOM: true });
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

export function buildDecoder(v: unknown, at: JsonAt, core: Core): Decoder | null {
  if (v === null || v === undefined) return null;
  const obj = expectObject(v, at);
  switch (typeOf(obj, at)) {
    case 'Sequence': {
      const list = expectArray(obj.decoders, child(at, 'decoders'))
        .map((d, i) => buildDecoder(d, child(child(at, 'decoders'), i), core))
        .filter((d): d is Decoder => d !== null);
      return (tokens) => list.reduce((acc, d) => d(acc), tokens);
    }
    case 'ByteLevel':
      return (tokens) => [byteLevelDecode(core, tokens)];
    case 'Replace': {
      const re = hfPattern(obj.pattern, child(at, 'pattern'));
      const content = expectString(obj.content, child(at, 'content'));
      return (tokens) => tokens.map((t) => t.replace(re, () => content));
    }
    case 'ByteFallback':
      return byteFallback;
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip':
      return strip(obj, at);
    case 'Metaspace':
      return metaspace(obj, at);
    case 'WordPiece': {
      const prefix = typeof obj.prefix === 'string' ? obj.prefix : '##';
      const cleanup = optBool(obj, 'cleanup', true);
      return (tokens) =>
        tokens.map((t, i) => {
          if (i !== 0) t = t.startsWith(prefix) ? t.slice(prefix.length) : ` ${t}`;
          // Upstream's WordPiece cleanup is transformers' plus " do not" -> " don't".
          return cleanup ? cleanUpTokenization(t).replaceAll(' do not', " don't") : t;
        });
    }
    case 'BPEDecoder': {
      const suffix = typeof obj.suffix === 'string' ? obj.suffix : '</w>';
      return (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i === tokens.length - 1 ? '' : ' '));
    }
    default:
      return unsupported(obj, at, 'decoder');
  }
}

/**
 * transformers' `clean_up_tokenization`: removes the space before punctuation and English contractions
 * ("do n't" -> "don't"), as the `clean_up_tokenization_spaces` config asks.
 */
export function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/**
 * "<0xAB>" tokens become bytes; each run of them is decoded as UTF-8 when valid, else one U+FFFD per byte
 * (upstream's choice, which keeps a run's length visible to streaming detokenizers).
 */
function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  const bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    try {
      out.push(strict.decode(Uint8Array.from(bytes)));
    } catch {
      out.push('\ufffd'.repeat(bytes.length));
    }
    bytes.length = 0;
  };
  for (const t of tokens) {
    const b = t.length === 6 && t.startsWith('<0x') && t.endsWith('>') ? parseHexByte(t.slice(3, 5)) : -1;
    if (b >= 0) {
      bytes.push(b);
    } else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

function parseHexByte(h: string): number {
  return /^[0-9a-fA-F]{2}$/.test(h) ? parseInt(h, 16) : -1;
}

function strip(obj: Json, at: JsonAt): Decoder {
  const content = expectString(obj.content, child(at, 'content'));
  if ([...content].length !== 1) fail(child(at, 'content'), 'expected a single character');
  const start = optInt(obj, 'start', 0, at);
  const stop = optInt(obj, 'stop', 0, at);
  return (tokens) =>
    tokens.map((t) => {
      const chars = [...t];
      let from = 0;
      while (from < start && from < chars.length && chars[from] === content) from++;
      let to = chars.length;
      while (chars.length - to < stop && to > from && chars[to - 1] === content) to--;
      return chars.slice(from, to).join('');
    });
}

/** Replacement -> ' '; in the first token, replacements vanish when a prefix was prepended (upstream drops all). */
function metaspace(obj: Json, at: JsonAt): Decoder {
  const replacement = expectString(obj.replacement ?? '\u2581', child(at, 'replacement'));
  const scheme =
    typeof obj.prepend_scheme === 'string' ? obj.prepend_scheme : optBool(obj, 'add_prefix_space', true) ? 'always' : 'never';
  return (tokens) =>
    tokens.map((t, i) => t.replaceAll(replacement, i === 0 && scheme !== 'never' ? '' : ' '));
}

// ---- Byte-level, in core.wasm ----------------------------------------------------------------------------------

const charToByteTables = new WeakMap<Core, number>();

/** CHAR_TO_BYTE copied into wasm memory once per instance. */
function charToByteTable(core: Core): number {
  let p = charToByteTables.get(core);
  if (p === undefined) {
    p = core.alloc(CHAR_TO_BYTE.byteLength);
    new Int16Array(core.exports.memory.buffer, p, CHAR_TO_BYTE.length).set(CHAR_TO_BYTE);
    charToByteTables.set(core, p);
  }
  return p;
}

/** All tokens' byte-level chars -> bytes -> one string (lossy UTF-8). */
function byteLevelDecode(core: Core, tokens: string[]): string {
  const table = charToByteTable(core);
  let units = 0;
  for (const t of tokens) units += t.length;
  const cap = units * 3;
  // block: src u8[cap] | dst u8[cap] | ends u32[n]
  const block = core.alloc(2 * cap + 4 * tokens.length + 4);
  const src = block;
  const dst = block + cap;
  const ends = (dst + cap + 3) & ~3;
  const u8 = core.u8();
  const u32 = core.u32();
  let pos = 0;
  for (let i = 0; i < tokens.length; i++) {
    pos += utf8.encodeInto(tokens[i], u8.subarray(src + pos, src + cap)).written;
    u32[(ends >>> 2) + i] = pos;
  }
  const len = core.exports.byteLevelDecode(src, ends, tokens.length, table, CHAR_TO_BYTE.length, dst);
  const text = lossy.decode(u8.subarray(dst, dst + len));
  core.free(block);
  return text;
}
