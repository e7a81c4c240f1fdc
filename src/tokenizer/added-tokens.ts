/**
 * Added tokens (`tokenizers` added_vocabulary.rs): tokens such as `<|endoftext|>` or `<s>` that are cut out of the
 * text before normalization and pre-tokenization, so they are never split by BPE.
 *
 * Two passes, as upstream: tokens with `normalized: false` are matched in the raw text; the stretches between
 * them are normalized, then tokens with `normalized: true` are matched in the normalized text, against their
 * normalized content (so with a Prepend("▁") normalizer, `<|end_story|>` is looked for as "▁<|end_story|>").
 * Matching is leftmost-longest; `single_word` rejects a match inside a word, `lstrip`/`rstrip` swallow the
 * whitespace beside it.
 */
import type { Normalizer } from './normalizers';
import type { Piece } from './pre-tokenizers';
import { escapeLiteral } from './regex';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

/** A stretch of input: an added token's id, or text to pre-tokenize. */
export type Segment = { id: number } | Piece;

interface Matcher {
  re: RegExp;
  byPattern: Map<string, AddedToken>;
}

const WORD_CHAR = /[\p{Alphabetic}\p{N}_]/u;

export class AddedVocabulary {
  private readonly raw: Matcher | null;
  private readonly normalizedMatcher: Matcher | null;

  /**
   * @param tokens the added tokens; with `splitSpecialTokens` (tokenizer_config's split_special_tokens), special
   *   ones are left in the text as ordinary characters.
   */
  constructor(tokens: readonly AddedToken[], normalizer: Normalizer | null, splitSpecialTokens: boolean) {
    const active = tokens.filter((t) => !(splitSpecialTokens && t.special) && t.content.length > 0);
    this.raw = matcher(active.filter((t) => !t.normalized).map((t) => [t.content, t]));
    this.normalizedMatcher = matcher(
      active.filter((t) => t.normalized).map((t) => [normalizer ? normalizer(t.content) : t.content, t]),
    );
  }

  /** Cuts `text` into added tokens and normalized text pieces. */
  split(text: string, normalizer: Normalizer | null): Segment[] {
    const out: Segment[] = [];
    for (const a of findMatches(text, this.raw)) {
      if ('id' in a) {
        out.push(a);
        continue;
      }
      const norm = normalizer ? normalizer(a.text) : a.text;
      for (const b of findMatches(norm, this.normalizedMatcher)) {
        out.push('id' in b ? b : { text: b.text, first: a.first && b.first });
      }
    }
    return out;
  }
}

function matcher(entries: [string, AddedToken][]): Matcher | null {
  const byPattern = new Map<string, AddedToken>();
  for (const [p, t] of entries) if (p.length > 0 && !byPattern.has(p)) byPattern.set(p, t);
  if (byPattern.size === 0) return null;
  // Longest first: a JS alternation takes the first alternative that matches at the leftmost position.
  const alternatives = [...byPattern.keys()].sort((a, b) => b.length - a.length).map(escapeLiteral);
  return { re: new RegExp(alternatives.join('|'), 'gu'), byPattern };
}

/** `AddedVocabulary::find_matches`: segments of `s`, with piece offsets tracked for `first`. */
function findMatches(s: string, m: Matcher | null): Segment[] {
  if (m === null || s.length === 0) return s.length === 0 ? [] : [{ text: s, first: true }];
  const out: Segment[] = [];
  let startOffset = 0;
  m.re.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = m.re.exec(s)) !== null) {
    let start = match.index;
    let stop = start + match[0].length;
    const token = m.byPattern.get(match[0])!;
    if (start < startOffset) continue; // inside whitespace an rstrip already took
    if (token.singleWord) {
      const before = start === 0 || !WORD_CHAR.test(lastChar(s, start));
      const after = stop === s.length || !WORD_CHAR.test(String.fromCodePoint(s.codePointAt(stop)!));
      if (!before || !after) continue; // upstream skips it and goes on after it
    }
    if (token.lstrip) {
      let j = start;
      while (j > startOffset && /\p{White_Space}/u.test(s[j - 1])) j--;
      start = j;
    }
    if (token.rstrip) {
      while (stop < s.length && /\p{White_Space}/u.test(s[stop])) stop++;
      m.re.lastIndex = stop;
    }
    if (startOffset < start) out.push({ text: s.slice(startOffset, start), first: startOffset === 0 });
    out.push({ id: token.id });
    startOffset = stop;
  }
  if (startOffset < s.length) out.push({ text: s.slice(startOffset), first: startOffset === 0 });
  return out;
}

function lastChar(s: string, end: number): string {
  const cp = s.codePointAt(end - 1)!;
  return cp >= 0xdc00 && cp <= 0xdfff && end >= 2 ? String.fromCodePoint(s.codePointAt(end - 2)!) : String.fromCodePoint(cp);
}
