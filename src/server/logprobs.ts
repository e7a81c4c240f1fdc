/**
 * Engine logprobs (per position: token id -> Logprob) in OpenAI's two wire shapes: completions' legacy
 * `{tokens, token_logprobs, top_logprobs, text_offset}` and chat's `content[]` of `{token, logprob, bytes,
 * top_logprobs}`. -Infinity becomes -9999, as OpenAI and vLLM send it (JSON has no infinities).
 *
 * A token's string is the text it adds after the token before it, as the incremental detokenizer writes it, so
 * that a choice's tokens join to its text (decoding a token alone drops SentencePiece's leading space).
 */
import type { Logprob } from '../outputs.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ChatLogprob, ChatLogprobContent, CompletionLogprobs, PromptLogprobsWire } from './protocol.js';

const finite = (x: number) => Math.max(x, -9999);
const utf8 = new TextEncoder();

/** The text token `id` adds after token `prev` (null: at the start). */
export type TokenText = (prev: number | null, id: number) => string;

/** TokenText for a tokenizer: decode(prev, id) minus decode(prev), special tokens kept. */
export function tokenTexts(tokenizer: Tokenizer): TokenText {
  const decode = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: false });
  return (prev, id) => {
    if (prev === null) return decode([id]);
    const before = decode([prev]);
    const both = decode([prev, id]);
    return both.startsWith(before) ? both.slice(before.length) : decode([id]);
  };
}

/**
 * The TokenText a request's logprobs use: the tokens' text, or with vLLM's return_tokens_as_token_ids (the request
 * field, else the server's --return-tokens-as-token-ids) `token_id:N`, which names tokens that are not valid UTF-8
 * on their own.
 */
export function requestTokenTexts(tokenizer: Tokenizer, asTokenIds: boolean): TokenText {
  return asTokenIds ? (_prev, id) => `token_id:${id}` : tokenTexts(tokenizer);
}

/** Prompt logprobs as vLLM sends them: per position, token id -> {logprob, rank, decoded_token}; -inf as -9999. */
export function promptLogprobsWire(entries: readonly (Map<number, Logprob> | null)[]): PromptLogprobsWire {
  return entries.map((e) =>
    e ? Object.fromEntries([...e].map(([t, lp]) => [String(t), { logprob: finite(lp.logprob), rank: lp.rank, decoded_token: lp.decodedToken }])) : null,
  );
}

/**
 * The `k` most likely entries of one position, most likely first; with `asked` (vLLM's logprob_token_ids) those
 * ids' entries instead, in the order asked.
 */
function topK(entry: Map<number, Logprob>, k: number, asked?: readonly number[] | null): [number, Logprob][] {
  if (asked?.length) return [...new Set(asked)].flatMap((t) => (entry.has(t) ? [[t, entry.get(t)!] as [number, Logprob]] : []));
  if (k <= 0) return [];
  return [...entry].sort((a, b) => b[1].logprob - a[1].logprob).slice(0, k);
}

/** Completions: logprobs for runs of positions, continuing text offsets and token context across runs. */
export class CompletionLogprobsBuilder {
  constructor(
    private readonly k: number,
    private readonly text: TokenText,
    /** The token before the first position built (the last prompt token; null when the prompt is echoed). */
    private prev: number | null,
    /** Characters of text before the next token. */
    private offset = 0,
  ) {}

  /**
   * Positions `ids[i]` with `entries[i]` (null: no distribution, the first prompt token). The sampled token and
   * the top `k` (so up to k + 1 entries, as OpenAI documents).
   */
  build(ids: readonly number[], entries: readonly (Map<number, Logprob> | null)[], asked?: readonly number[] | null): CompletionLogprobs {
    const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    ids.forEach((id, i) => {
      const entry = entries[i] ?? null;
      const token = this.text(this.prev, id);
      out.tokens.push(token);
      out.text_offset.push(this.offset);
      this.offset += token.length;
      const sampled = entry?.get(id);
      out.token_logprobs.push(sampled ? finite(sampled.logprob) : null);
      if (entry) {
        const top: Record<string, number> = {};
        if (sampled) top[token] = finite(sampled.logprob);
        for (const [t, lp] of topK(entry, this.k, asked)) top[this.text(this.prev, t)] = finite(lp.logprob);
        out.top_logprobs.push(top);
      } else {
        out.top_logprobs.push(null);
      }
      this.prev = id;
    });
    return out;
  }
}

/** Appends b's positions to a (non-streaming completions join their deltas). */
export function concatCompletionLogprobs(a: CompletionLogprobs | null, b: CompletionLogprobs): CompletionLogprobs {
  if (!a) return b;
  return {
    tokens: [...a.tokens, ...b.tokens],
    token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
    top_logprobs: [...a.top_logprobs, ...b.top_logprobs],
    text_offset: [...a.text_offset, ...b.text_offset],
  };
}

/**
 * Chat: `choices[].logprobs.content[]` for generated positions, each with its `k` most likely alternatives.
 * `prev` is the token before `ids[0]` (the last prompt token, or the previous delta's last token).
 */
export function chatLogprobs(
  ids: readonly number[],
  entries: readonly Map<number, Logprob>[],
  k: number,
  text: TokenText,
  prev: number | null,
  asked?: readonly number[] | null,
): ChatLogprobContent[] {
  return ids.map((id, i) => {
    const entry = entries[i] ?? new Map<number, Logprob>();
    const item = (t: number, lp: Logprob | undefined): ChatLogprob => {
      const token = text(prev, t);
      return { token, logprob: finite(lp?.logprob ?? -Infinity), bytes: [...utf8.encode(token)] };
    };
    const content = { ...item(id, entry.get(id)), top_logprobs: topK(entry, k, asked).map(([t, lp]) => item(t, lp)) };
    prev = id;
    return content;
  });
}
