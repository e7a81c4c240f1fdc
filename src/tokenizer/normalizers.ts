/**
 * Normalizers of `tokenizers` (normalizers/*.rs) as string -> string functions. They run on each stretch of text
 * between added tokens, before pre-tokenization. Offsets are not tracked: the library returns ids only.
 */
import { toByteLevel } from './byte-level';
import { child, expectArray, expectObject, expectString, type Json, type JsonAt, optBool, typeOf, unsupported } from './json';
import { hfPattern } from './regex';

export type Normalizer = (s: string) => string;

/** Builds the normalizer described by tokenizer.json's `normalizer` field (null: none). */
export function buildNormalizer(v: unknown, at: JsonAt): Normalizer | null {
  if (v === null || v === undefined) return null;
  const obj = expectObject(v, at);
  switch (typeOf(obj, at)) {
    case 'Sequence': {
      const list = expectArray(obj.normalizers, child(at, 'normalizers'))
        .map((n, i) => buildNormalizer(n, child(child(at, 'normalizers'), i)))
        .filter((n): n is Normalizer => n !== null);
      return (s) => list.reduce((acc, n) => n(acc), s);
    }
    case 'Prepend': {
      const prepend = expectString(obj.prepend, child(at, 'prepend'));
      return (s) => (s.length > 0 ? prepend + s : s);
    }
    case 'Append': {
      const append = expectString(obj.append, child(at, 'append'));
      return (s) => (s.length > 0 ? s + append : s);
    }
    case 'Replace': {
      const re = hfPattern(obj.pattern, child(at, 'pattern'));
      const content = expectString(obj.content, child(at, 'content'));
      return (s) => s.replace(re, () => content);
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = obj.type as 'NFC' | 'NFD' | 'NFKC' | 'NFKD';
      return (s) => s.normalize(form);
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'Strip':
      return strip(optBool(obj, 'strip_left', true), optBool(obj, 'strip_right', true));
    case 'StripAccents':
      return stripAccents;
    case 'Nmt':
      return nmt;
    case 'ByteLevel':
      return toByteLevel;
    case 'BertNormalizer':
      return bert(obj);
    default:
      // Precompiled (SentencePiece's compiled charsmap) belongs to Unigram tokenizers, which are not supported.
      return unsupported(obj, at, 'normalizer');
  }
}

function strip(left: boolean, right: boolean): Normalizer {
  return (s) => {
    if (left) s = s.replace(/^\p{White_Space}+/u, '');
    if (right) s = s.replace(/\p{White_Space}+$/u, '');
    return s;
  };
}

/** Removes combining marks (General_Category M), as `unicode_normalization`'s is_combining_mark. */
function stripAccents(s: string): string {
  return s.replace(/\p{M}/gu, '');
}

/** SentencePiece's NMT normalization: drops control chars, turns odd spaces into ' '. */
function nmt(s: string): string {
  return s
    .replace(/[\u0001-\u0008\u000b\u000e-\u001f\u007f\u008f\u009f]/g, '')
    .replace(/[\u0009\u000a\u000c\u000d\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]/g, ' ');
}

/**
 * BERT's normalizer: drop control, format and private-use chars, whitespace -> ' ', pad CJK ideographs with spaces, strip
 * nonspacing marks after NFD, lowercase.
 */
function bert(obj: Json): Normalizer {
  const cleanText = optBool(obj, 'clean_text', true);
  const chinese = optBool(obj, 'handle_chinese_chars', true);
  const lowercase = optBool(obj, 'lowercase', true);
  const accents = typeof obj.strip_accents === 'boolean' ? obj.strip_accents : lowercase;
  return (s) => {
    // Upstream's "other" chars are Cc, Cf, Co and Cs; unassigned code points stay.
    if (cleanText) s = s.replace(/\u0000|\ufffd|(?![\t\n\r])[\p{Cc}\p{Cf}\p{Co}]/gu, '').replace(/\p{White_Space}/gu, ' ');
    if (chinese) {
      s = s.replace(
        /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B920}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/gu,
        ' $& ',
      );
    }
    if (accents) s = s.normalize('NFD').replace(/\p{Mn}/gu, '');
    if (lowercase) s = s.toLowerCase();
    return s;
  };
}
