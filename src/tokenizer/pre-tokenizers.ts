/**
 * Pre-tokenizers of `tokenizers` (pre_tokenizers/*.rs): they cut normalized text into pieces ("words") that the
 * BPE model encodes independently.
 *
 * Byte-level is kept lazy: when ByteLevel is the last step (as in GPT-2, Llama-3 and Qwen), pieces stay plain
 * text and the model maps their UTF-8 bytes to byte-level symbols itself (`byteLevel: true` below), saving a
 * string rewrite per piece. A ByteLevel step followed by other steps rewrites the pieces to byte-level chars.
 */
import { toByteLevel } from './byte-level';
import { child, expectArray, expectObject, expectString, fail, type Json, type JsonAt, optBool, typeOf, unsupported } from './json';
import { findAll, hfPattern, onigToJs } from './regex';

/** A piece of text; `first` when it starts at offset 0 of the input (Metaspace's prepend_scheme "first"). */
export interface Piece {
  text: string;
  first: boolean;
}

export type PreTokenizer = (pieces: Piece[]) => Piece[];

export interface PreTokenization {
  run: PreTokenizer | null;
  /** Pieces leave as plain text to be read as byte-level symbols by the model. */
  byteLevel: boolean;
}

/** GPT-2's split pattern, used by ByteLevel with use_regex (Oniguruma syntax). */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: readonly string[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** Builds tokenizer.json's `pre_tokenizer` (null: the whole stretch is one piece). */
export function buildPreTokenizer(v: unknown, at: JsonAt): PreTokenization {
  if (v === null || v === undefined) return { run: null, byteLevel: false };
  const steps = flatten(expectObject(v, at), at);
  const last = steps[steps.length - 1];
  const lazyByteLevel = last !== undefined && last.obj.type === 'ByteLevel';
  const fns = steps.map(({ obj, at }, i) => build(obj, at, !(lazyByteLevel && i === steps.length - 1)));
  return { run: (pieces) => fns.reduce((acc, f) => f(acc), pieces), byteLevel: lazyByteLevel };
}

function flatten(obj: Json, at: JsonAt): { obj: Json; at: JsonAt }[] {
  if (typeOf(obj, at) !== 'Sequence') return [{ obj, at }];
  const list = expectArray(obj.pretokenizers, child(at, 'pretokenizers'));
  return list.flatMap((p, i) => {
    const a = child(child(at, 'pretokenizers'), i);
    return flatten(expectObject(p, a), a);
  });
}

function build(obj: Json, at: JsonAt, materializeByteLevel: boolean): PreTokenizer {
  switch (typeOf(obj, at)) {
    case 'ByteLevel': {
      const addPrefixSpace = optBool(obj, 'add_prefix_space', true);
      const re = optBool(obj, 'use_regex', true) ? onigToJs(GPT2_PATTERN) : null;
      return (pieces) => {
        const out: Piece[] = [];
        for (const p of pieces) {
          const text = addPrefixSpace && !p.text.startsWith(' ') ? ` ${p.text}` : p.text;
          const parts = re ? split(text, p.first, matchesOf(re, text), 'Isolated') : [{ text, first: p.first }];
          for (const q of parts) out.push(materializeByteLevel ? { text: toByteLevel(q.text), first: q.first } : q);
        }
        return out;
      };
    }
    case 'Split': {
      const re = hfPattern(obj.pattern, child(at, 'pattern'));
      const behavior = behaviorOf(obj, at);
      const invert = optBool(obj, 'invert', false);
      return eachPiece((p) => split(p.text, p.first, matchesOf(re, p.text, invert), behavior));
    }
    case 'Metaspace':
      return metaspace(obj, at);
    case 'Digits': {
      const behavior = optBool(obj, 'individual_digits', false) ? 'Isolated' : 'Contiguous';
      return eachPiece((p) => split(p.text, p.first, charMatches(p.text, /\p{N}/u), behavior));
    }
    case 'Punctuation': {
      const behavior = obj.behavior === undefined ? 'Isolated' : behaviorOf(obj, at);
      return eachPiece((p) => split(p.text, p.first, charMatches(p.text, PUNCTUATION), behavior));
    }
    case 'Whitespace': {
      const re = onigToJs('\\w+|[^\\w\\s]+');
      return eachPiece((p) => split(p.text, p.first, matchesOf(re, p.text, true), 'Removed'));
    }
    case 'WhitespaceSplit':
      return eachPiece((p) => split(p.text, p.first, charMatches(p.text, /\p{White_Space}/u), 'Removed'));
    case 'BertPreTokenizer':
      return eachPiece((p) =>
        split(p.text, p.first, charMatches(p.text, /\p{White_Space}/u), 'Removed').flatMap((q) =>
          split(q.text, q.first, charMatches(q.text, PUNCTUATION), 'Isolated'),
        ),
      );
    case 'CharDelimiterSplit': {
      const delimiter = expectString(obj.delimiter, child(at, 'delimiter'));
      return eachPiece((p) => split(p.text, p.first, charMatches(p.text, (c) => c === delimiter), 'Removed'));
    }
    default:
      return unsupported(obj, at, 'pre_tokenizer');
  }
}

/** Rust's `is_ascii_punctuation() || is_punctuation()`: ASCII symbols count too. */
const PUNCTUATION = /[\p{P}!-/:-@[-`{-~]/u;

function metaspace(obj: Json, at: JsonAt): PreTokenizer {
  const replacement = expectString(obj.replacement ?? '\u2581', child(at, 'replacement'));
  // Files before tokenizers 0.19 say add_prefix_space instead of prepend_scheme.
  const scheme =
    typeof obj.prepend_scheme === 'string' ? obj.prepend_scheme : optBool(obj, 'add_prefix_space', true) ? 'always' : 'never';
  if (!['always', 'first', 'never'].includes(scheme)) fail(child(at, 'prepend_scheme'), `unknown scheme "${scheme}"`);
  const splitWords = optBool(obj, 'split', true);
  return eachPiece((p) => {
    let text = p.text.replaceAll(' ', replacement);
    if ((scheme === 'always' || (scheme === 'first' && p.first)) && !text.startsWith(replacement)) {
      text = replacement + text;
    }
    if (!splitWords) return text.length > 0 ? [{ text, first: p.first }] : [];
    return split(text, p.first, charMatches(text, (c) => c === replacement), 'MergedWithNext');
  });
}

function behaviorOf(obj: Json, at: JsonAt): Behavior {
  const b = expectString(obj.behavior, child(at, 'behavior'));
  if (!BEHAVIORS.includes(b)) fail(child(at, 'behavior'), `unknown split behavior "${b}"`);
  return b as Behavior;
}

function eachPiece(f: (p: Piece) => Piece[]): PreTokenizer {
  return (pieces) => {
    const out: Piece[] = [];
    for (const p of pieces) for (const q of f(p)) out.push(q);
    return out;
  };
}

// ---- Splitting ------------------------------------------------------------------------------------------------
// `NormalizedString::split`: the text is covered by alternating segments [start, end, isMatch] (flattened in
// triples), then the behaviour decides what becomes a piece. Empty pieces are dropped, as upstream does.

/** The segments of `s` around the regex's matches (`invert` swaps which are matches). */
function matchesOf(re: RegExp, s: string, invert = false): number[] {
  const m = findAll(re, s);
  const seg: number[] = [];
  let prev = 0;
  for (let i = 0; i < m.length; i += 2) {
    if (prev !== m[i]) seg.push(prev, m[i], invert ? 1 : 0);
    seg.push(m[i], m[i + 1], invert ? 0 : 1);
    prev = m[i + 1];
  }
  if (prev !== s.length) seg.push(prev, s.length, invert ? 1 : 0);
  return seg;
}

/** Segments for a char predicate: each matching char is its own match. */
function charMatches(s: string, test: RegExp | ((c: string) => boolean)): number[] {
  const f = typeof test === 'function' ? test : (c: string) => test.test(c);
  const seg: number[] = [];
  let prev = 0;
  let i = 0;
  for (const c of s) {
    if (f(c)) {
      if (prev < i) seg.push(prev, i, 0);
      seg.push(i, i + c.length, 1);
      prev = i + c.length;
    }
    i += c.length;
  }
  if (prev < s.length) seg.push(prev, s.length, 0);
  return seg;
}

function split(s: string, first: boolean, seg: number[], behavior: Behavior): Piece[] {
  const ranges: number[] = []; // [start, end) pairs
  if (behavior === 'Removed' || behavior === 'Isolated') {
    for (let i = 0; i < seg.length; i += 3) {
      if (behavior === 'Isolated' || seg[i + 2] === 0) ranges.push(seg[i], seg[i + 1]);
    }
  } else if (behavior === 'MergedWithPrevious' || behavior === 'Contiguous') {
    let prevMatch = false;
    for (let i = 0; i < seg.length; i += 3) {
      const isMatch = seg[i + 2] === 1;
      const merge = behavior === 'Contiguous' ? isMatch === prevMatch : isMatch && !prevMatch;
      if (merge && ranges.length > 0) ranges[ranges.length - 1] = seg[i + 1];
      else ranges.push(seg[i], seg[i + 1]);
      prevMatch = isMatch;
    }
  } else {
    // MergedWithNext: the mirror image of MergedWithPrevious, walking backwards.
    const rev: number[] = [];
    let prevMatch = false;
    for (let i = seg.length - 3; i >= 0; i -= 3) {
      const isMatch = seg[i + 2] === 1;
      if (isMatch && !prevMatch && rev.length > 0) rev[rev.length - 2] = seg[i];
      else rev.push(seg[i], seg[i + 1]);
      prevMatch = isMatch;
    }
    for (let i = rev.length - 2; i >= 0; i -= 2) ranges.push(rev[i], rev[i + 1]);
  }
  const out: Piece[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i + 1] > ranges[i]) out.push({ text: s.slice(ranges[i], ranges[i + 1]), first: first && ranges[i] === 0 });
  }
  return out;
}
