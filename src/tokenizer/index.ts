/**
 * Hugging Face tokenizers from tokenizer.json: byte-level BPE (GPT-2, Llama-3, Qwen2/3) and SentencePiece-style
 * BPE with byte fallback (Llama-2, Mistral, TinyStories), behaving as transformers 5.x reading tokenizer.json
 * and tokenizer_config.json (its `TokenizersBackend`, on `tokenizers` 0.23). The pipeline, in data-flow order:
 *   added tokens split out (added-tokens.ts) -> normalizer (normalizers.ts) -> pre-tokenizer (pre-tokenizers.ts)
 *   -> BPE in core.wasm (bpe-model.ts) -> post-processor (post-processors.ts);
 *   decoding: ids -> token strings -> decoder (decoders.ts).
 *
 * One known divergence: for checkpoints whose tokenizer_config names `LlamaTokenizer` and whose model_type is
 * llama, v5's `AutoTokenizer` replaces tokenizer.json's normalizer by its own Metaspace pre-tokenizer, which treats
 * a leading space, text after a special token and unknown chars differently (" Hello" -> [1, 15043] instead of
 * [1, 29871, 15043]). This class follows tokenizer.json, as the `tokenizers` library, transformers v4 and v5's
 * other classes (Qwen2, GPT-2, Mistral, Phi-3, Llama-3) do. On plain text the two agree (goldens.json).
 *
 * @example
 *   const tok = await Tokenizer.fromSource(source);
 *   tok.encode('Hello, my name is'); // [128000, 9906, 11, 856, 836, 374] for Llama-3
 *   tok.decode([9906, 11]);          // 'Hello,'
 */
import { ModelFileError } from '../errors';
import type { ModelSource } from '../platform';
import type { ChatTemplate } from './config';
import { cleanUpTokenization } from './decoders';
import { configObject, loadParts, type TokenizerParts } from './load';

export { IncrementalDetokenizer } from './incremental';

export interface EncodeOptions {
  /** Add the post-processor's special tokens (e.g. BOS), as `tokenizer(text).input_ids` does. Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /**
   * Drop added tokens marked special. Default false. As in `tokenizers`, a special token with
   * `normalized: true` under a normalizer that changes it is not dropped (see TokenizerParts.skippedOnDecode).
   */
  skipSpecialTokens?: boolean;
  /**
   * vLLM's option, accepted for API parity. It only affects transformers' slow (Python) tokenizers; for
   * tokenizer.json ones HF passes special tokens through the decoder, so it changes nothing here. Default true.
   */
  spacesBetweenSpecialTokens?: boolean;
}

export class Tokenizer {
  /** Max id + 1 over the vocabulary and the added tokens. */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly unkToken: string | null;
  readonly padToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly unkTokenId: number | null;
  readonly padTokenId: number | null;
  /** Ids of the added tokens marked `special` (what skipSpecialTokens drops, but see DecodeOptions). */
  readonly specialTokenIds: ReadonlySet<number>;
  /** The named special tokens present, e.g. `{bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>'}`. */
  readonly allSpecialTokens: Record<string, string>;
  /** tokenizer_config's chat_template (or chat_template.jinja beside it): Jinja text or named templates. */
  readonly chatTemplate: ChatTemplate;
  /** tokenizer_config.json as read. */
  readonly config: Record<string, unknown>;

  private constructor(private readonly parts: TokenizerParts) {
    const { model, addedById, specials } = parts;
    this.vocabSize = Math.max(model.tokens.length, ...[...addedById.keys()].map((id) => id + 1));
    const named = specials.named;
    this.bosToken = named.bos_token ?? null;
    this.eosToken = named.eos_token ?? null;
    this.unkToken = named.unk_token ?? null;
    this.padToken = named.pad_token ?? null;
    this.bosTokenId = this.idOrNull(this.bosToken);
    this.eosTokenId = this.idOrNull(this.eosToken);
    this.unkTokenId = this.idOrNull(this.unkToken);
    this.padTokenId = this.idOrNull(this.padToken);
    this.specialTokenIds = new Set([...addedById.values()].filter((t) => t.special).map((t) => t.id));
    this.allSpecialTokens = Object.fromEntries(Object.entries(named).filter(([, v]) => v !== undefined)) as Record<string, string>;
    this.chatTemplate = parts.chatTemplate;
    this.config = parts.config;
  }

  /**
   * Reads tokenizer.json, tokenizer_config.json and special_tokens_map.json (the last two optional; a
   * chat_template.jinja file supplies the chat template when the config has none).
   */
  static async fromSource(src: ModelSource): Promise<Tokenizer> {
    const path = (f: string) => `${src.name.replace(/\/+$/, '')}/${f}`;
    const readJson = async (file: string, optional: boolean): Promise<unknown> => {
      if (optional && !(await src.exists(file))) return undefined;
      let text: string;
      try {
        text = await src.readText(file);
      } catch (e) {
        throw new ModelFileError(path(file), `cannot read it (${(e as Error).message})`);
      }
      if (file === 'tokenizer.json') return text; // parsed by loadParts, which reports bad JSON
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new ModelFileError(path(file), `not valid JSON (${(e as Error).message})`);
      }
    };
    const [json, config, map] = await Promise.all([
      readJson('tokenizer.json', false),
      readJson('tokenizer_config.json', true),
      readJson('special_tokens_map.json', true),
    ]);
    const cfg = configObject(config, path('tokenizer_config.json'));
    if (cfg.chat_template === undefined && (await src.exists('chat_template.jinja'))) {
      cfg.chat_template = await src.readText('chat_template.jinja');
    }
    return new Tokenizer(await loadParts(json, cfg, configObject(map, path('special_tokens_map.json')), path('tokenizer.json')));
  }

  /** From already-read files; `tokenizerJson` may also be its text. */
  static async fromJson(
    tokenizerJson: unknown,
    tokenizerConfig?: Record<string, unknown>,
    specialTokensMap?: Record<string, unknown>,
  ): Promise<Tokenizer> {
    const cfg = configObject(tokenizerConfig, 'tokenizer_config.json');
    const map = configObject(specialTokensMap, 'special_tokens_map.json');
    return new Tokenizer(await loadParts(tokenizerJson, cfg, map, 'tokenizer.json'));
  }

  /** Text -> ids, as `tokenizer(text).input_ids` in transformers. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const { added, normalizer, preTokenizer, byteLevel, model, postProcessor } = this.parts;
    const ids: number[] = [];
    let words: string[] = [];
    for (const seg of added.split(text, normalizer)) {
      if ('id' in seg) {
        if (words.length > 0) model.encode(words, byteLevel, ids);
        words = [];
        ids.push(seg.id);
      } else if (preTokenizer) {
        for (const p of preTokenizer([seg])) words.push(p.text);
      } else {
        words.push(seg.text);
      }
    }
    if (words.length > 0) model.encode(words, byteLevel, ids);
    return (opts.addSpecialTokens ?? true) && postProcessor ? postProcessor(ids) : ids;
  }

  /** Ids -> text, as transformers' `tokenizer.decode`. Unknown ids are skipped. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const text = this.convertTokensToString(this.convertIdsToTokens(ids, opts.skipSpecialTokens ?? false));
    return this.parts.cleanUpSpaces ? cleanUpTokenization(text) : text;
  }

  /** Ids -> token strings (unknown ids dropped; special ones too with `skipSpecialTokens`). */
  convertIdsToTokens(ids: readonly number[], skipSpecialTokens = false): string[] {
    const out: string[] = [];
    const skip = this.parts.skippedOnDecode;
    for (const id of ids) {
      const t = this.idToToken(id);
      if (t !== undefined && !(skipSpecialTokens && skip.has(t))) out.push(t);
    }
    return out;
  }

  /** Token strings -> text through the decoder alone (no clean-up), as transformers' convert_tokens_to_string. */
  convertTokensToString(tokens: string[]): string {
    const { decoder } = this.parts;
    return decoder ? decoder(tokens).join('') : tokens.join(' ');
  }

  /** The token string of an id (an added token with `normalized: true` by its normalized content, as HF). */
  idToToken(id: number): string | undefined {
    return this.parts.addedStrings.get(id) ?? this.parts.model.tokens[id];
  }

  tokenToId(token: string): number | undefined {
    return this.parts.addedByContent.get(token)?.id ?? this.parts.model.tokenToId(token);
  }

  /** Gives the wasm tables back; the tokenizer is unusable afterwards. */
  dispose(): void {
    this.parts.model.dispose();
  }

  private idOrNull(token: string | null): number | null {
    return token === null ? null : (this.tokenToId(token) ?? null);
  }
}

export type { ChatTemplate };
export type { IncrementalDetokenizerOptions } from './incremental';
