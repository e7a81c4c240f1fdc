/**
 * `badWords` (vLLM's NoBadWordsLogitsProcessor, vllm/v1/sample/ops/bad_words.py). Each word is tokenized twice,
 * as is and after a space, so it is banned both at the start of the text and mid-text; a word's last token is
 * banned when the output ends with the word's other tokens.
 *
 * @example
 *   const words = badWordsTokenIds(['hello'], (text) => tokenizer.encode(text, { addSpecialTokens: false }));
 *   bannedByBadWords(words, outputTokenIds); // ids to set to -inf this step
 */

/**
 * Tokenizes bad words as vLLM's SamplingParams.update_from_tokenizer does: `word.trimStart()` as is, and with a
 * leading space when that gives a different first token and the same number of tokens.
 */
export function badWordsTokenIds(words: readonly string[], encode: (text: string) => readonly number[]): number[][] {
  const out: number[][] = [];
  for (const word of words) {
    const bare = [...encode(word.trimStart())];
    out.push(bare);
    const spaced = [...encode(' ' + word.trimStart())];
    if (spaced.length > 0 && spaced[0] !== bare[0] && spaced.length === bare.length) out.push(spaced);
  }
  return out.filter((w) => w.length > 0);
}

/** The last token of every bad word whose other tokens end the output (single-token words: always). */
export function bannedByBadWords(words: readonly (readonly number[])[], outputTokenIds: ArrayLike<number>): number[] {
  const banned: number[] = [];
  const n = outputTokenIds.length;
  for (const w of words) {
    const prefix = w.length - 1;
    if (prefix > n) continue;
    let match = true;
    for (let j = 0; j < prefix && match; j++) match = outputTokenIds[n - prefix + j] === w[j];
    if (match) banned.push(w[prefix]);
  }
  return banned;
}
