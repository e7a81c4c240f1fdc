// Randomized comparison with @huggingface/tokenizers (tokenizers.js, test-only) on seeded strings mixing scripts,
// whitespace, punctuation, emoji and special tokens, for every distinct tokenizer in shared/models; and streaming
// detokenization of random id sequences.
//
// Where tokenizers.js itself departs from Hugging Face's Python/Rust tokenizers (checked against transformers
// 5.17, whose outputs tokenizer.test.ts pins), the comparison leaves that case out:
//   1. decode strips a U+FEFF (BOM) that HF keeps; strings with U+FEFF are not decode-compared.
//   2. decode applies clean_up_tokenization_spaces (" !" -> "!"), which transformers v5 ignores for BPE
//      tokenizers; where the config asks for it (or is silent, tokenizers.js's default) ours is cleaned first.
//   3. added tokens with `normalized: true` under a normalizer (TinyStories-656K): HF matches them against the
//      normalized text ("▁<|end_story|>") and names them by their normalized string; tokenizers.js does neither.
//      That tokenizer is compared on strings without special tokens, and not on decode.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { describe, expect, test } from 'vitest';
import { IncrementalDetokenizer, type Tokenizer } from '../src/tokenizer';
import { cleanUpTokenization } from '../src/tokenizer/decoders';
import { modelDir } from './helpers/paths';
import { loadTokenizer } from './helpers/tokenizer-source';
import { HARD_STRINGS, prng, randomText } from './helpers/tokenizer-strings';

/** One folder per distinct tokenizer.json + tokenizer_config.json (qwen3, opt, gpt2, bf16 copies share files). */
const DISTINCT = ['stories260K', 'tinystories-656K', 'tiny-random-gpt2', 'tiny-random-llama2', 'llama3-rand', 'qwen2-rand', 'mistral-rand', 'phi3-rand'];
const STRINGS_PER_TOKENIZER = 500;

function readJson(model: string, file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(modelDir(model), file), 'utf8'));
}

describe('against tokenizers.js', () => {
  test.each(DISTINCT)('%s', async (m) => {
    const tok = await loadTokenizer(m);
    const config = readJson(m, 'tokenizer_config.json');
    const ref = new HfTokenizer(readJson(m, 'tokenizer.json'), config);
    const normalizedSpecials = m.startsWith('tinystories');
    const specials = normalizedSpecials ? [] : specialStrings(tok);
    const refCleansUp = config.clean_up_tokenization_spaces !== false;
    const rand = prng(0x5eed ^ m.length);
    const texts = normalizedSpecials ? HARD_STRINGS.filter((s) => !/<[|/]?[a-z_]+\|?>/.test(s)) : [...HARD_STRINGS];
    for (let i = 0; i < STRINGS_PER_TOKENIZER; i++) texts.push(randomText(rand, specials));
    let decodeCompared = 0;
    for (const text of texts) {
      const ids = tok.encode(text);
      const at = `${m}: ${JSON.stringify(text)}`;
      expect(ids, at).toEqual(ref.encode(text).ids);
      expect(tok.encode(text, { addSpecialTokens: false }), at).toEqual(ref.encode(text, { add_special_tokens: false }).ids);
      if (normalizedSpecials || text.includes('\ufeff') || ids.length === 0) continue;
      for (const skip of [false, true]) {
        const ours = tok.decode(ids, { skipSpecialTokens: skip });
        expect(refCleansUp ? cleanUpTokenization(ours) : ours, at).toBe(ref.decode(ids, { skip_special_tokens: skip }));
      }
      decodeCompared++;
    }
    expect(decodeCompared).toBeGreaterThan(normalizedSpecials ? -1 : STRINGS_PER_TOKENIZER / 2);
  });
});

/** The added tokens' texts plus a few that belong to other tokenizers (those must stay plain text). */
function specialStrings(tok: Tokenizer): string[] {
  const own = [...tok.specialTokenIds].slice(0, 24).map((id) => tok.idToToken(id)!);
  return [...own, '<|endoftext|>', '<|im_start|>', '<s>', '</s>', '<|eot_id|>'];
}

describe('IncrementalDetokenizer on random ids', () => {
  /**
   * Random ids: any vocabulary token, runs from encoding text (byte-fallback runs spelling whole chars split
   * over tokens), and special tokens. Lone "<0xAB>" tokens are left out: ByteFallback turns a whole run with an
   * invalid byte into one U+FFFD per byte, so text already streamed from its valid head would change afterwards
   * (vLLM streams it the same way).
   */
  function randomIds(tok: Tokenizer, rand: () => number, n: number): number[] {
    const ids: number[] = [];
    const specials = [...tok.specialTokenIds];
    while (ids.length < n) {
      const r = rand();
      if (r < 0.15 && specials.length > 0) {
        ids.push(specials[Math.floor(rand() * specials.length)]);
      } else if (r < 0.45) {
        ids.push(...tok.encode(randomText(rand, [], 3), { addSpecialTokens: false }));
      } else {
        const id = Math.floor(rand() * tok.vocabSize);
        if (!/^<0x[0-9A-F]{2}>$/.test(tok.idToToken(id) ?? '')) ids.push(id);
      }
    }
    return ids;
  }

  test.each(DISTINCT)('%s: streamed text equals decode', async (m) => {
    const tok = await loadTokenizer(m);
    const rand = prng(0xd1ce ^ m.length);
    for (let round = 0; round < 60; round++) {
      const prompt = randomIds(tok, rand, Math.floor(rand() * 12));
      const ids = randomIds(tok, rand, 1 + Math.floor(rand() * 40));
      const skip = round % 2 === 1;
      const d = new IncrementalDetokenizer(tok, [], { skipSpecialTokens: skip });
      let out = '';
      for (const id of ids) out += d.push([id]);
      const full = tok.decode(ids, { skipSpecialTokens: skip });
      // Text ending in an incomplete char stays held back, as in vLLM; all else is out.
      const at = `${m} round ${round}: ${JSON.stringify(ids)}`;
      if (full.endsWith('\ufffd')) expect(full.startsWith(out), at).toBe(true);
      else expect(out, at).toBe(full);
      // With a prompt for context, a batch push gives what one-by-one pushes give.
      const a = new IncrementalDetokenizer(tok, prompt, { skipSpecialTokens: skip });
      const b = new IncrementalDetokenizer(tok, prompt, { skipSpecialTokens: skip });
      for (const id of ids) a.push([id]);
      b.push(ids);
      expect(b.text, at).toBe(a.text);
    }
  });
});
