/**
 * Test-only text generators for tokenizer tests: hand-picked hard strings and a seeded random mix of scripts,
 * whitespace, punctuation, digits, emoji and special tokens.
 */

/** Strings that exercise every stage: whitespace runs, contractions, digits, CJK, emoji, marks, specials. */
export const HARD_STRINGS: readonly string[] = [
  '',
  ' ',
  '  ',
  ' Hello',
  '  two  spaces  ',
  'trailing space ',
  '\t tab\tand\ttabs\t\t',
  'line\nbreaks\n\nand\r\nCRLF\r\n',
  '\n\n\nleading newlines',
  'multiple     spaces     between',
  "I'm sure it's fine, they'll say: we'd've DON'T WON'T O'Neill's",
  "'S 'T 'RE 'VE 'M 'LL 'D 'ſ",
  '12345 1,234,567.89 3.14159 0x1F 1e-9 007',
  '٣٤٥ ١٢ ०१२ ¹²³ ½ Ⅻ',
  '北京欢迎你！こんにちは、世界。안녕하세요',
  'Ελληνικά Русский текст עברית العربية हिन्दी ไทย',
  'café naïve résumé Ångström façade',
  'e\u0301 a\u0300\u0316 n\u0303 combining Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗',
  '😀 😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇳 ❤️',
  'mixed😀emoji中文and English123',
  'code: function f(x) { return x * 2; } // ok\n\tif (a && b || !c) {}',
  'URL https://example.com/path?q=1&r=two#frag and email a.b@c.de',
  '<|endoftext|>',
  'before<|endoftext|>after',
  'a <|endoftext|> b <|endoftext|><|endoftext|>c',
  '<s>[INST] Hi [/INST] Hello! </s><s>[INST] again [/INST]',
  '<s> </s> <unk> <pad>',
  'Once upon a time<|end_story|> The end. <|start_story|>Again',
  'x <|end_story|> y<|end_story|>',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
  '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>',
  '<|im_start|> <|im_end|>  <think>\n\n</think>',
  '▁already▁has▁metaspace ▁ ▁▁',
  'ĠĊ byte-level look-alikes ĉ',
  '\u0000 nul \u0001 ctrl \u007f del \u0085 nel \u00a0 nbsp \u200b zwsp \ufeff bom \u2028 ls',
  '\u3000ideographic space\u3000',
  'ß ẞ İ ı ﬁ ﬀ K Å',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𐍈 𓀀 🂡',
  '!!!???...,,,;;;:::---___***',
  '"quotes" «guillemets» „German“ ‘single’',
  'a'.repeat(300),
  'The quick brown fox jumps over the lazy dog. '.repeat(8),
];

/** mulberry32: a small seeded PRNG, so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'the', 'The', 'Hello', 'world', 'tokenizer', "don't", "it's", "I'll", 'naïve', 'Straße', 'über', '東京', '中文',
  '日本語', 'русский', 'Ελλάδα', 'مرحبا', 'שלום', 'हिन्दी', 'ไทย', '한국어', 'emoji', 'Once', 'upon', 'a', 'time',
];
const PIECES = [
  ' ', ' ', ' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\u00a0', '\u3000', '.', ',', '!', '?', ':', ';', "'", '"',
  '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '-', '_', '*', '#', '@', '$', '%', '&', '+', '=', '~', '`', '|',
  '0', '1', '42', '2024', '3.14', '1,000', '٣', '½', '😀', '👍🏽', '👨‍👩‍👧', '🇯🇵', '❤️', 'é', 'e\u0301', 'ñ', 'ç', '€', '£',
  '—', '…', '«', '»', '’', 's', "'s", "'T", "'ll", "'VE", '▁', 'Ġ', 'ſ', 'İ', '\u200b', '\ufeff', '\u0085', '𝔘',
];

/**
 * A random string of up to `maxParts` parts: words, whitespace, punctuation, digits, emoji, random code points
 * (BMP and astral, no lone surrogates) and, when given, special tokens.
 */
export function randomText(rand: () => number, specials: readonly string[], maxParts = 24): string {
  const n = 1 + Math.floor(rand() * maxParts);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.35) s += WORDS[Math.floor(rand() * WORDS.length)];
    else if (r < 0.75) s += PIECES[Math.floor(rand() * PIECES.length)];
    else if (r < 0.85) s += randomCodePoints(rand, 1 + Math.floor(rand() * 4));
    else if (r < 0.93 && specials.length > 0) s += specials[Math.floor(rand() * specials.length)];
    else s += String.fromCharCode(0x61 + Math.floor(rand() * 26)).repeat(1 + Math.floor(rand() * 3));
  }
  return s;
}

function randomCodePoints(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rand();
    let cp: number;
    if (r < 0.4) cp = 0x20 + Math.floor(rand() * 0x60);
    else if (r < 0.7) cp = 0xa0 + Math.floor(rand() * 0x2000);
    else if (r < 0.9) cp = 0x3000 + Math.floor(rand() * 0x7000);
    else cp = 0x10000 + Math.floor(rand() * 0x10000);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}
