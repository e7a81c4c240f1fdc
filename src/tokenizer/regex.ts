/**
 * Oniguruma (the regex engine of Rust `tokenizers`) -> JavaScript `u`-mode RegExp.
 *
 * Tokenizer patterns are written for Oniguruma's Ruby syntax, whose shorthands are Unicode-aware and whose
 * anchors are line anchors. The differences that change token boundaries, and what each becomes here:
 *   \s \S      White_Space (JS \s adds U+FEFF and lacks U+0085)   -> \p{White_Space}, \P{White_Space}
 *   \d \D      any decimal digit (JS: ASCII only)                 -> \p{Nd}, \P{Nd}
 *   \w \W      Unicode word chars (JS: ASCII only)                -> Alphabetic, marks, Nd, Pc, Join_Control
 *   \h \H      hex digit                                           -> [0-9a-fA-F]
 *   .          anything but \n (JS also stops at \r, U+2028/9)    -> [^\n]
 *   ^ $        line anchors                                        -> (?<=^|\n), (?=\n|$)
 *   \A \z \Z   string anchors                                      -> ^, $, (?=\n?$)
 *   (?i:...)   JS has no inline flags: each letter becomes a class of its case variants, with the Unicode
 *              simple case folds that Oniguruma applies (s ~ U+017F LONG S, k ~ U+212A KELVIN SIGN)
 *   \p{Han}    script names need `Script=` in JS                   -> \p{Script=Han}
 *   \x{263A}   -> \u{263A};  a `{` that is no quantifier -> \{;  identity escapes like \' -> '
 *   (?>...) X++ X*+ atomic groups and possessive quantifiers have no JS form: they become ordinary ones, which
 *              differs only for patterns whose match depends on forbidding backtracking (none of the BPE
 *              split patterns in use do).
 * Unsupported (throws): \G, \W inside a class, nested classes and `&&` intersections.
 *
 * @example onigToJs("(?i:'s|'t)|\\s+(?!\\S)") // -> /(?:'[sSſ]|'[tT])|\p{White_Space}+(?!\P{White_Space})/gu
 */

import { child, expectObject, fail, type JsonAt } from './json';

const WORD_SET = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
const SYNTAX_CHARS = '^$\\.*+?()[]{}|/';
const POSIX_PROPERTIES: Record<string, string> = {
  alpha: 'Alphabetic',
  digit: 'Nd',
  space: 'White_Space',
  upper: 'Uppercase',
  lower: 'Lowercase',
  punct: 'P',
  cntrl: 'Cc',
  xdigit: 'ASCII_Hex_Digit',
};

/** Translates an Oniguruma pattern; the result has flags `gu`. Throws SyntaxError when it cannot. */
export function onigToJs(pattern: string): RegExp {
  return new RegExp(translate(pattern), 'gu');
}

/** A literal string as a global RegExp. */
export function literalRegex(s: string): RegExp {
  return new RegExp(escapeLiteral(s), 'gu');
}

/** Escapes regex syntax chars (not '-': `u` mode rejects `\-` outside a class). */
export function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

function translate(src: string): string {
  let out = '';
  let i = 0;
  // Case-insensitivity per open group: a `(?i:` group sets it for its extent.
  const groups: boolean[] = [];
  let ci = false;
  let afterQuantifier = false;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') {
      const [js, len] = escape(src, i, false, ci);
      out += js;
      i += len;
      afterQuantifier = false;
      continue;
    }
    if (c === '[') {
      const [js, len] = charClass(src, i, ci);
      out += js;
      i += len;
      afterQuantifier = false;
      continue;
    }
    if (c === '(') {
      groups.push(ci);
      if (src.startsWith('(?i:', i)) {
        ci = true;
        out += '(?:';
        i += 4;
      } else if (src.startsWith('(?-i:', i)) {
        ci = false;
        out += '(?:';
        i += 5;
      } else if (src.startsWith('(?>', i)) {
        out += '(?:';
        i += 3;
      } else if (src.startsWith('(?i)', i)) {
        // Applies to the rest of the enclosing group; it opened no group of its own.
        groups.pop();
        ci = true;
        i += 4;
      } else {
        out += c;
        i++;
      }
      afterQuantifier = false;
      continue;
    }
    if (c === ')') {
      ci = groups.pop() ?? false;
      out += c;
      i++;
      afterQuantifier = false;
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      if (afterQuantifier && c === '+') {
        i++; // possessive marker: no JS equivalent, matched as an ordinary quantifier
        afterQuantifier = false;
        continue;
      }
      out += c;
      i++;
      // `X??` / `X*?` are lazy: the `?` ends the quantifier.
      afterQuantifier = !(c === '?' && afterQuantifier);
      continue;
    }
    if (c === '{') {
      const m = /^\{\d+(?:,\d*)?\}/.exec(src.slice(i, i + 24)) ?? /^\{,\d+\}/.exec(src.slice(i, i + 24));
      if (m) {
        out += m[0].startsWith('{,') ? `{0${m[0].slice(1)}` : m[0];
        i += m[0].length;
        afterQuantifier = true;
      } else {
        out += '\\{';
        i++;
        afterQuantifier = false;
      }
      continue;
    }
    afterQuantifier = false;
    if (c === '}' || c === ']') {
      out += `\\${c}`;
    } else if (c === '.') {
      out += '[^\\n]';
    } else if (c === '^') {
      out += '(?<=^|\\n)';
    } else if (c === '$') {
      out += '(?=\\n|$)';
    } else if (c === '/') {
      out += '\\/';
    } else {
      const cp = src.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out += ci ? caseClass(ch) : ch;
      i += ch.length;
      continue;
    }
    i++;
  }
  return out;
}

/** Translates the escape at src[i] (a backslash); returns the JS text and the source length consumed. */
function escape(src: string, i: number, inClass: boolean, ci: boolean): [string, number] {
  const e = src[i + 1];
  if (e === undefined) throw new SyntaxError('pattern ends with a lone backslash');
  switch (e) {
    case 's':
      return ['\\p{White_Space}', 2];
    case 'S':
      return ['\\P{White_Space}', 2];
    case 'd':
      return ['\\p{Nd}', 2];
    case 'D':
      return ['\\P{Nd}', 2];
    case 'w':
      return [inClass ? WORD_SET : `[${WORD_SET}]`, 2];
    case 'W':
      if (inClass) throw new SyntaxError('\\W inside a character class is not supported');
      return [`[^${WORD_SET}]`, 2];
    case 'h':
      return [inClass ? '0-9a-fA-F' : '[0-9a-fA-F]', 2];
    case 'H':
      if (inClass) throw new SyntaxError('\\H inside a character class is not supported');
      return ['[^0-9a-fA-F]', 2];
    case 'A':
      return ['^', 2];
    case 'z':
      return ['$', 2];
    case 'Z':
      return ['(?=\\n?$)', 2];
    case 'G':
      throw new SyntaxError('\\G is not supported');
    case 'p':
    case 'P': {
      const close = src.indexOf('}', i);
      if (src[i + 2] !== '{' || close < 0) throw new SyntaxError(`bad property escape at ${i}`);
      let name = src.slice(i + 3, close);
      let negated = e === 'P';
      if (name.startsWith('^')) {
        negated = !negated;
        name = name.slice(1);
      }
      return [property(name, negated), close + 1 - i];
    }
    case 'x': {
      if (src[i + 2] === '{') {
        const close = src.indexOf('}', i);
        return [`\\u{${src.slice(i + 3, close)}}`, close + 1 - i];
      }
      return [src.slice(i, i + 4), 4];
    }
    case 'u':
      return [src.slice(i, i + 6), 6];
    case 'n':
    case 'r':
    case 't':
    case 'f':
    case 'v':
    case '0':
    case 'b':
    case 'B':
      return [`\\${e}`, 2];
    default: {
      if (/[1-9]/.test(e)) return [`\\${e}`, 2];
      if (e === 'k' && src[i + 2] === '<') {
        const close = src.indexOf('>', i);
        return [src.slice(i, close + 1), close + 1 - i];
      }
      if (SYNTAX_CHARS.includes(e) || (inClass && e === '-')) return [`\\${e}`, 2];
      if (/[A-Za-z]/.test(e)) throw new SyntaxError(`unsupported escape \\${e}`);
      // An identity escape of a char that needs none (JS `u` mode rejects those).
      const ch = String.fromCodePoint(src.codePointAt(i + 1)!);
      return [ci && !inClass ? caseClass(ch) : ch, 1 + ch.length];
    }
  }
}

/** `\p{name}`: JS accepts general categories and binary properties bare, scripts only as `Script=`. */
function property(name: string, negated: boolean): string {
  const p = negated ? 'P' : 'p';
  const posix = POSIX_PROPERTIES[name.toLowerCase()];
  if (posix && !negated) return `\\p{${posix}}`;
  for (const candidate of [name, `Script=${name}`]) {
    try {
      new RegExp(`\\p{${candidate}}`, 'u');
      return `\\${p}{${candidate}}`;
    } catch {
      // try the next spelling
    }
  }
  throw new SyntaxError(`unknown Unicode property \\p{${name}}`);
}

/** Translates the class starting at src[i] ('['); returns the JS text and the source length consumed. */
function charClass(src: string, i: number, ci: boolean): [string, number] {
  let j = i + 1;
  let out = '[';
  if (src[j] === '^') {
    out += '^';
    j++;
  }
  if (src[j] === ']') {
    out += '\\]'; // a leading ] is literal in Oniguruma
    j++;
  }
  const extra: string[] = []; // other-case variants under (?i:)
  while (j < src.length && src[j] !== ']') {
    const c = src[j];
    if (c === '[') throw new SyntaxError('nested character classes are not supported');
    if (c === '&' && src[j + 1] === '&') throw new SyntaxError('character class intersection (&&) is not supported');
    if (c === '\\') {
      const [js, len] = escape(src, j, true, ci);
      out += js;
      j += len;
      continue;
    }
    const ch = String.fromCodePoint(src.codePointAt(j)!);
    if (ci) {
      // A range a-z also admits A-Z; a single letter its case variants.
      if (src[j + ch.length] === '-' && src[j + ch.length + 1] !== ']' && src[j + ch.length + 1] !== undefined) {
        const hi = String.fromCodePoint(src.codePointAt(j + ch.length + 1)!);
        out += `${ch}-${hi}`;
        if (/[a-z]/.test(ch) && /[a-z]/.test(hi)) extra.push(`${ch.toUpperCase()}-${hi.toUpperCase()}`);
        if (/[A-Z]/.test(ch) && /[A-Z]/.test(hi)) extra.push(`${ch.toLowerCase()}-${hi.toLowerCase()}`);
        j += ch.length + 1 + hi.length;
        continue;
      }
      extra.push(caseVariants(ch).slice(ch.length));
    }
    out += ch === '/' ? '\\/' : ch;
    j += ch.length;
  }
  if (src[j] !== ']') throw new SyntaxError(`unterminated character class at ${i}`);
  return [`${out}${extra.join('')}]`, j + 1 - i];
}

/** A char matched case-insensitively: itself, or a class of its variants. */
function caseClass(ch: string): string {
  const v = caseVariants(ch);
  return v === ch ? ch : `[${v}]`;
}

/** The char followed by the other chars of its simple case-fold class. */
function caseVariants(ch: string): string {
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  let v = ch;
  for (const x of [lower, upper]) if ([...x].length === 1 && !v.includes(x)) v += x;
  if (lower === 's') v += '\u017f';
  if (lower === 'k') v += '\u212a';
  return v;
}

/** A `tokenizers` Pattern field, `{"String": "..."}` or `{"Regex": "..."}`, as a global RegExp. */
export function hfPattern(v: unknown, at: JsonAt): RegExp {
  const obj = expectObject(v, at);
  if (typeof obj.String === 'string') return literalRegex(obj.String);
  if (typeof obj.Regex === 'string') {
    try {
      return onigToJs(obj.Regex);
    } catch (e) {
      fail(child(at, 'Regex'), `cannot translate the regex ${JSON.stringify(obj.Regex)}: ${(e as Error).message}`);
    }
  }
  fail(at, 'expected {"String": ...} or {"Regex": ...}');
}

/**
 * All matches of a global regex as [start, end) pairs, stepping one code point past empty matches like
 * Oniguruma's `find_iter`.
 */
export function findAll(re: RegExp, s: string): number[] {
  const out: number[] = [];
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    const start = m.index;
    const end = start + m[0].length;
    out.push(start, end);
    if (end === start) re.lastIndex = end + (s.codePointAt(end)! > 0xffff ? 2 : 1);
  }
  return out;
}
