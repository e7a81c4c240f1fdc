/**
 * Streaming detokenization, as vLLM's `detokenize_incrementally` (vllm/transformers_utils/detokenizer_utils.py).
 *
 * Decoding one token alone is wrong for two reasons: a UTF-8 char may span several tokens (byte-level BPE and
 * "<0xAB>" byte fallback), and SentencePiece decoders strip the leading space of the first token. So the tokens
 * are kept with two offsets:
 *   prefix_offset .. read_offset   tokens already emitted, decoded again as context;
 *   read_offset .. end             tokens not emitted yet.
 * Each push decodes tokens[prefix:] and tokens[prefix:read]; the difference is the new text, held back while it
 * ends in U+FFFD (an incomplete char). The first window starts 5 tokens into the prompt's tail.
 *
 * @example
 *   const d = new IncrementalDetokenizer(tok, promptIds);
 *   for (const id of sampled) process.stdout.write(d.push([id]));
 */
import type { Tokenizer } from './index';

/** vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET. */
const INITIAL_OFFSET = 5;

export interface IncrementalDetokenizerOptions {
  skipSpecialTokens?: boolean;
  /** Accepted for parity with vLLM; see DecodeOptions.spacesBetweenSpecialTokens. */
  spacesBetweenSpecialTokens?: boolean;
}

export class IncrementalDetokenizer {
  private readonly tokens: string[];
  private prefixOffset: number;
  private readOffset: number;
  private readonly skipSpecialTokens: boolean;
  private output = '';

  constructor(
    private readonly tok: Tokenizer,
    promptIds: readonly number[],
    opts: IncrementalDetokenizerOptions = {},
  ) {
    this.skipSpecialTokens = opts.skipSpecialTokens ?? false;
    // Only the prompt's tail matters as context: 5 tokens of prefix plus 2 of slack, as vLLM takes.
    this.tokens = tok.convertIdsToTokens(promptIds.slice(-(INITIAL_OFFSET + 2)), this.skipSpecialTokens);
    this.readOffset = this.tokens.length;
    this.prefixOffset = Math.max(this.readOffset - INITIAL_OFFSET, 0);
  }

  /** All output text so far. */
  get text(): string {
    return this.output;
  }

  /** Appends new ids; returns the newly readable text ('' while a multi-byte char is incomplete). */
  push(ids: readonly number[]): string {
    let added = '';
    for (const id of ids) {
      for (const t of this.tok.convertIdsToTokens([id], this.skipSpecialTokens)) this.tokens.push(t);
      const prefixText = this.tok.convertTokensToString(this.tokens.slice(this.prefixOffset, this.readOffset));
      const newText = this.tok.convertTokensToString(this.tokens.slice(this.prefixOffset));
      if (newText.length > prefixText.length && !newText.endsWith('\ufffd')) {
        added += newText.slice(prefixText.length);
        this.prefixOffset = this.readOffset;
        this.readOffset = this.tokens.length;
      }
    }
    this.output += added;
    return added;
  }
}
