// Tokenizer against Hugging Face: goldens.json (transformers 5.17 input_ids and chat ids), hard strings with HF
// goldens, the public API, malformed files, streaming detokenization and speed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { InvalidArgumentError, ModelFileError } from '../src/errors';
import { IncrementalDetokenizer, Tokenizer } from '../src/tokenizer';
import { onigToJs } from '../src/tokenizer/regex';
import { loadGoldens, modelDir } from './helpers/paths';
import { HF_GOLDENS } from './helpers/tokenizer-hf-goldens';
import { VARIANT_GOLDENS } from './helpers/tokenizer-variant-goldens';
import { loadTokenizer, memorySource, TOKENIZER_MODELS } from './helpers/tokenizer-source';
import { HARD_STRINGS, prng, randomText } from './helpers/tokenizer-strings';

const goldens = loadGoldens();
const GOLDEN_MODELS = TOKENIZER_MODELS.filter((m) => goldens[m]);

interface ChatGolden {
  text?: string;
  ids?: number[];
}

describe('goldens.json', () => {
  test.each(GOLDEN_MODELS)('%s: encode gives input_ids, decode gives the text back', async (m) => {
    const tok = await loadTokenizer(m);
    // TinyStories' specials have normalized: true, which makes `tokenizers` keep them even when skipping.
    const kept = m.startsWith('tinystories') ? '<|start_story|> ' : '';
    for (const p of goldens[m].prompts) {
      expect(tok.encode(p.text)).toEqual(p.input_ids);
      expect(tok.decode(p.input_ids, { skipSpecialTokens: true })).toBe(kept + p.text);
    }
  });

  test.each(GOLDEN_MODELS.filter((m) => goldens[m].chat))('%s: chat template text encodes to its ids', async (m) => {
    const tok = await loadTokenizer(m);
    const chats = (goldens[m].chat as ChatGolden[]).filter((c) => c.text !== undefined && c.ids !== undefined);
    expect(chats.length).toBeGreaterThan(0);
    for (const c of chats) expect(tok.encode(c.text!, { addSpecialTokens: false })).toEqual(c.ids);
  });
});

describe('hard strings against transformers 5.17', () => {
  test.each(Object.keys(HF_GOLDENS.models))('%s', async (m) => {
    const tok = await loadTokenizer(m);
    HF_GOLDENS.models[m].forEach(([ids, idsPlain, dec, decSkip], i) => {
      const text = HF_GOLDENS.texts[i];
      const at = `${m} text ${i} ${JSON.stringify(text).slice(0, 60)}`;
      expect(tok.encode(text), at).toEqual(ids);
      expect(tok.encode(text, { addSpecialTokens: false }), at).toEqual(idsPlain ?? ids);
      const skipped = decSkip ?? text;
      expect(tok.decode(ids, { skipSpecialTokens: true }), at).toBe(skipped);
      expect(tok.decode(ids), at).toBe(dec ?? skipped);
    });
  });

  test('the goldens cover the hard strings', () => {
    expect(HF_GOLDENS.texts.slice(0, HARD_STRINGS.length)).toEqual(HARD_STRINGS);
  });
});

describe('other pipeline components against tokenizers 0.23', () => {
  const bases = new Map<string, string>();
  const baseJson = (folder: string) => {
    if (!bases.has(folder)) bases.set(folder, readFileSync(join(modelDir(folder), 'tokenizer.json'), 'utf8'));
    return JSON.parse(bases.get(folder)!) as Record<string, unknown> & { model: object; added_tokens: unknown[] };
  };
  test.each(VARIANT_GOLDENS.variants.map((v) => [v.name, v] as const))('%s', async (_, v) => {
    const json = baseJson(v.base);
    for (const [key, value] of Object.entries(v.overrides)) {
      if (key === 'model') Object.assign(json.model, value);
      else if (key === 'added') json.added_tokens.push(...(value as unknown[]));
      else json[key] = value;
    }
    const tok = await Tokenizer.fromJson(json);
    v.rows.forEach(([ids, decoded], i) => {
      const text = VARIANT_GOLDENS.texts[i];
      expect(tok.encode(text), JSON.stringify(text)).toEqual(ids);
      expect(tok.decode(ids), JSON.stringify(text)).toBe(decoded);
    });
    tok.dispose();
  });

  test('regex syntax chars in added tokens and literal patterns', async () => {
    const json = {
      ...tinyBpe(),
      normalizer: { type: 'Replace', pattern: { String: 'a-(b)' }, content: 'ab' },
      added_tokens: [{ id: 4, content: '<|fim-mid|>', special: true, normalized: false }],
    };
    const tok = await Tokenizer.fromJson(json);
    expect(tok.encode('a-(b)<|fim-mid|>a')).toEqual([3, 4, 1]);
  });
});

describe('Oniguruma -> JS regex', () => {
  // Each expectation is what tokenizers 0.23's Oniguruma matches (checked with its Split pre-tokenizer).
  const pieces = (pattern: string, s: string) => [...s.matchAll(onigToJs(pattern))].map((m) => m[0]);
  test.each([
    ["(?i:'s|'t)|\\p{L}+", "it'S 'ſo", ['it', "'S", "'ſ", 'o']], // case folds, incl. U+017F
    ['\\s+', 'a\u0085b\ufeffc', ['\u0085']], // White_Space: NEL yes, BOM no
    ['\\d+', 'x٣4', ['٣4']], // Unicode digits
    ['\\w+', 'naïve_x ok', ['naïve_x', 'ok']],
    ['.+', 'a\rb\nc', ['a\rb', 'c']], // only \n stops `.`
    ['^x', 'x\nx', ['x', 'x']], // line anchors
    ['\\Ax', 'x\nx', ['x']],
    ['\\p{Han}+', '漢字かな', ['漢字']], // a script name
    ['\\x{41}+', 'AAB', ['AA']],
    ['a++b', 'aab', ['aab']], // possessive, read as greedy
    ['[a-c]{2}|{', 'abc{', ['ab', '{']], // a `{` that is no quantifier
    ["(?i:[a-c])+", 'aBcD', ['aBc']],
  ])('%s on %j', (pattern, text, want) => {
    expect(pieces(pattern, text)).toEqual(want);
  });
});

describe('round trips', () => {
  // Byte-level BPE with all 256 byte chars is lossless: any text comes back (Qwen's after NFC). (The 1000-token
  // tiny GPT-2 lacks some byte chars and drops them, as HF does.)
  test.each(['llama3-rand', 'qwen2-rand'])('%s: decode(encode(s)) == s', async (m) => {
    const tok = await loadTokenizer(m);
    const rand = prng(11);
    for (let i = 0; i < 300; i++) {
      const s = randomText(rand, [], 30).normalize('NFC');
      expect(tok.decode(tok.encode(s, { addSpecialTokens: false })), JSON.stringify(s)).toBe(s);
    }
  });

  // SentencePiece-style with byte fallback: lossless too, except for a literal "▁" (it decodes as a space).
  test.each(['tiny-random-llama2', 'mistral-rand', 'stories260K'])('%s: decode(encode(s), skip) == s', async (m) => {
    const tok = await loadTokenizer(m);
    const rand = prng(12);
    for (let i = 0; i < 300; i++) {
      const s = randomText(rand, [], 30).replaceAll('\u2581', '_');
      expect(tok.decode(tok.encode(s), { skipSpecialTokens: true }), JSON.stringify(s)).toBe(s);
    }
  });

  test('special tokens inside text are single ids', async () => {
    const gpt2 = await loadTokenizer('tiny-random-gpt2');
    const ids = gpt2.encode('a<|endoftext|>b');
    expect(ids.filter((id) => id === 0)).toHaveLength(1);
    expect(gpt2.decode(ids)).toBe('a<|endoftext|>b');
    expect(gpt2.decode(ids, { skipSpecialTokens: true })).toBe('ab');
    const qwen = await loadTokenizer('qwen2-rand');
    expect(qwen.encode('<|im_start|>user\nHi<|im_end|>').filter((id) => qwen.specialTokenIds.has(id))).toEqual([
      151644, 151645,
    ]);
    const tiny = await loadTokenizer('tinystories-656K');
    // Its specials have normalized: true, so they match after Prepend("▁"): only with a space (or start) before,
    // which they swallow.
    expect(tiny.encode('x <|end_story|>')).toEqual([1, 80, 76, 2]);
    expect(tiny.encode('x<|end_story|>')).not.toContain(2);
  });
});

describe('API', () => {
  test('Llama-3: ids, special tokens, chat template', async () => {
    const tok = await loadTokenizer('llama3-rand');
    expect(tok.vocabSize).toBe(128256);
    expect([tok.bosToken, tok.bosTokenId, tok.eosToken, tok.eosTokenId]).toEqual([
      '<|begin_of_text|>',
      128000,
      '<|eot_id|>',
      128009,
    ]);
    expect(tok.padTokenId).toBeNull();
    expect(tok.unkToken).toBeNull();
    expect(tok.allSpecialTokens).toEqual({ bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' });
    expect(tok.specialTokenIds.size).toBe(256);
    expect(typeof tok.chatTemplate).toBe('string');
    expect(tok.config.tokenizer_class).toBe('PreTrainedTokenizerFast');
    expect(tok.tokenToId('Hello')).toBe(9906);
    expect(tok.idToToken(9906)).toBe('Hello');
    expect(tok.tokenToId('<|eot_id|>')).toBe(128009);
    expect(tok.idToToken(128009)).toBe('<|eot_id|>');
    expect(tok.tokenToId('no such token')).toBeUndefined();
    expect(tok.idToToken(10 ** 9)).toBeUndefined();
    expect(tok.encode('Hello', { addSpecialTokens: false })).toEqual([9906]);
  });

  test('Qwen: no BOS, pad from the config, vocab over added tokens', async () => {
    const tok = await loadTokenizer('qwen2-rand');
    expect(tok.vocabSize).toBe(151669);
    expect([tok.bosTokenId, tok.eosTokenId, tok.padTokenId]).toEqual([null, 151645, 151643]);
    expect(tok.encode('Hello')).toEqual([9707]);
  });

  test('TinyStories: special_tokens_map.json and config agree', async () => {
    const tok = await loadTokenizer('tinystories-656K');
    expect([tok.bosTokenId, tok.eosTokenId, tok.unkTokenId, tok.padTokenId]).toEqual([1, 2, 0, 0]);
    expect(tok.vocabSize).toBe(2048);
    expect(tok.chatTemplate).toBeNull();
    // As in `tokenizers`, a normalized added token is known by its normalized string.
    expect(tok.idToToken(0)).toBe('\u2581<unk>');
  });

  test('GPT-2: <|endoftext|> is id 0 and the only special token', async () => {
    const tok = await loadTokenizer('tiny-random-gpt2');
    expect([tok.bosTokenId, tok.eosTokenId, tok.unkTokenId]).toEqual([0, 0, 0]);
    expect([...tok.specialTokenIds]).toEqual([0]);
    expect(tok.vocabSize).toBe(1000);
  });

  test('add_bos_token / add_eos_token in tokenizer_config rebuild the template (transformers v5)', async () => {
    const base = (await loadTokenizer('stories260K')).config;
    const json = readFileSync(join(modelDir('stories260K'), 'tokenizer.json'), 'utf8');
    const both = await Tokenizer.fromJson(json, { ...base, add_bos_token: true, add_eos_token: true });
    expect(both.encode('Hi')).toEqual([1, ...both.encode('Hi', { addSpecialTokens: false }), 2]);
    const none = await Tokenizer.fromJson(json, { ...base, add_bos_token: false });
    expect(none.encode('Hi')).toEqual(none.encode('Hi', { addSpecialTokens: false }));
    both.dispose();
    none.dispose();
  });

  test('fromSource reads chat_template.jinja when the config has no template', async () => {
    const src = memorySource('mem://tok', {
      'tokenizer.json': JSON.stringify(tinyBpe()),
      'tokenizer_config.json': '{"bos_token": "<s>"}',
      'chat_template.jinja': '{{ messages }}',
    });
    const tok = await Tokenizer.fromSource(src);
    expect(tok.chatTemplate).toBe('{{ messages }}');
    expect(tok.bosTokenId).toBe(0);
    expect(tok.encode('ab')).toEqual([3]);
  });
});

/** A 4-token byte-level-free BPE: a + b -> ab. */
function tinyBpe(): Record<string, unknown> {
  return {
    added_tokens: [{ id: 0, content: '<s>', special: true, normalized: false }],
    model: { type: 'BPE', vocab: { '<s>': 0, a: 1, b: 2, ab: 3 }, merges: ['a b'] },
  };
}

describe('malformed files', () => {
  const cases: [string, unknown, RegExp][] = [
    ['bad JSON', '{"model": ', /tokenizer\.json: not valid JSON/],
    ['not an object', '[1, 2]', /tokenizer\.json: expected an object/],
    ['unknown model type', { model: { type: 'WordPiece', vocab: {} } }, /model: unsupported model type "WordPiece"/],
    ['missing vocab', { model: { type: 'BPE', merges: [] } }, /model: the vocab is missing/],
    ['bad id', { model: { type: 'BPE', vocab: { a: 'x' }, merges: [] } }, /model\.vocab\.a: expected a token id/],
    ['merge outside the vocab', { model: { type: 'BPE', vocab: { a: 0, b: 1 }, merges: ['a b'] } }, /model\.merges\[0\]: merge \["a","b"\] uses "ab"/],
    ['malformed merge', { model: { type: 'BPE', vocab: { a: 0 }, merges: ['a'] } }, /model\.merges\[0\]: expected "left right"/],
    ['unknown pre-tokenizer', { ...tinyBpe(), pre_tokenizer: { type: 'Nope' } }, /pre_tokenizer: unsupported pre_tokenizer type "Nope"/],
    ['untranslatable regex', { ...tinyBpe(), normalizer: { type: 'Replace', pattern: { Regex: '\\G' }, content: '' } }, /normalizer\.pattern\.Regex: cannot translate/],
  ];
  test.each(cases)('%s', async (_, json, message) => {
    const err = await Tokenizer.fromJson(json).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toMatch(message);
  });

  test('fromSource names the source in the path', async () => {
    const err = await Tokenizer.fromSource(memorySource('/models/x', { 'tokenizer.json': '{' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as ModelFileError).file).toBe('/models/x/tokenizer.json');
    const missing = await Tokenizer.fromSource(memorySource('/models/y', {})).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/\/models\/y\/tokenizer\.json: cannot read it/);
    expect(missing).not.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('IncrementalDetokenizer', () => {
  /** Pushes `ids` one at a time; the concatenated output must equal what decode gives for all of them. */
  function stream(tok: Tokenizer, prompt: number[], ids: number[], skipSpecialTokens = false): string {
    const d = new IncrementalDetokenizer(tok, prompt, { skipSpecialTokens });
    let out = '';
    for (const id of ids) out += d.push([id]);
    expect(d.text).toBe(out);
    return out;
  }

  test.each(GOLDEN_MODELS)('%s: golden prompts and greedy continuations', async (m) => {
    const tok = await loadTokenizer(m);
    for (const p of goldens[m].prompts) {
      for (const skip of [false, true]) {
        expect(stream(tok, [], p.input_ids, skip)).toBe(tok.decode(p.input_ids, { skipSpecialTokens: skip }));
        // With the prompt as context the output is the continuation as decode(prompt + output) has it.
        const whole = tok.decode([...p.input_ids, ...p.greedy_ids], { skipSpecialTokens: skip });
        const prefix = tok.decode(p.input_ids, { skipSpecialTokens: skip });
        if (whole.startsWith(prefix)) {
          expect(stream(tok, p.input_ids, p.greedy_ids, skip)).toBe(whole.slice(prefix.length));
        }
      }
    }
  });

  test('holds back a char split over byte-fallback tokens', async () => {
    const tok = await loadTokenizer('tiny-random-llama2');
    const ids = tok.encode('中😀', { addSpecialTokens: false }); // "▁", then <0xF0> <0x9F> <0x98> <0x80> for 😀
    const d = new IncrementalDetokenizer(tok, [1]);
    const pieces = ids.map((id) => d.push([id]));
    expect(pieces.join('')).toBe(' 中😀');
    expect(pieces.slice(-4)).toEqual(['', '', '', '😀']);
  });

  test('holds back a char split over byte-level tokens', async () => {
    const tok = await loadTokenizer('tiny-random-gpt2'); // 1000 tokens: most non-ASCII chars are several tokens
    const ids = tok.encode(' 東京', { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(2);
    const d = new IncrementalDetokenizer(tok, []);
    const pieces = ids.map((id) => d.push([id]));
    expect(pieces.join('')).toBe(' 東京');
    expect(pieces.every((p) => !p.includes('\ufffd'))).toBe(true);
  });
});

describe('speed', () => {
  test('encodes a 10k-token text quickly after load', async () => {
    const tok = await loadTokenizer('llama3-rand');
    const rand = prng(5);
    let text = '';
    while (text.length < 45_000) text += `${randomText(rand, [], 8)} `;
    const t0 = performance.now();
    const ids = tok.encode(text);
    const t1 = performance.now();
    tok.encode(text);
    const t2 = performance.now();
    console.info(
      `llama3-rand: ${ids.length} tokens encoded in ${(t1 - t0).toFixed(1)} ms (cold word cache), ` +
        `${(t2 - t1).toFixed(1)} ms (warm)`,
    );
    expect(ids.length).toBeGreaterThan(10_000);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
    expect(t1 - t0).toBeLessThan(1000); // generous for shared CI machines; typically tens of ms
  });
});
