/**
 * A Tokenizer from GGUF metadata (`tokenizer.ggml.*`): the vocabulary is turned into the tokenizer.json and
 * tokenizer_config.json Hugging Face's converters write for the same tokenizer, which the usual loader reads. So
 * the pipeline stages (BPE in core.wasm, pre-tokenizers, decoders) are the ones tokenizer.json checkpoints use.
 *
 *   tokenizer.ggml.model = "llama" (SentencePiece BPE with scores): HF's LlamaConverter. Merges are rebuilt from
 *     the scores as transformers' SentencePieceExtractor does: every split of a piece into two pieces of the
 *     vocabulary is a merge, ranked by the merged piece's score (highest first), ties by vocabulary order, then by
 *     the ids of the two halves. Spaces become "▁", a "▁" is prepended when `add_space_prefix` (default true), bytes
 *     missing from the vocabulary fall back to <0xAB> tokens.
 *   tokenizer.ggml.model = "gpt2" (byte-level BPE with merges): the `pre` value picks the pre-tokenizer
 *     (PRE_SPECS: gpt-2, llama-bpe / llama3, qwen2, starcoder, ...).
 *
 * token_type (llama.cpp's llama_token_type): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
 * Unknown, control and user-defined tokens become added tokens (control and unknown special), as in HF's files.
 *
 * @example
 *   const header = await readGgufHeader(src);
 *   const tok = await ggufTokenizer(header.metadata, src.name);
 *   tok.encode('Hello'); // [1, 15043] for a Llama-2 vocabulary
 */
import { ModelFileError } from '../errors.js';
import type { GgufValue } from '../loader/gguf.js';
import { Tokenizer } from './index.js';

const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;
/** Longest piece (UTF-16 units) whose splits sentencePieceMerges considers. */
const MAX_MERGED_PIECE = 256;

/** Split regexes (Oniguruma syntax, as the models' tokenizer.json files hold them). */
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * How a gpt2-type vocabulary splits text, by `tokenizer.ggml.pre` (llama.cpp's llm_tokenizer_bpe groups):
 *   'gpt2'   ByteLevel with GPT-2's own regex;
 *   'digits' each digit apart, then GPT-2's regex (StarCoder, Refact, Command-R, SmolLM);
 *   a regex  that split (Isolated), then ByteLevel without its regex (Llama 3, Qwen2).
 * `nfc`: the tokenizer.json has an NFC normalizer; `ignoreMerges`: a word that is a token is not merged (Llama 3).
 */
interface PreSpec {
  split: 'gpt2' | 'digits' | string;
  nfc?: boolean;
  ignoreMerges?: boolean;
}
const LLAMA3: PreSpec = { split: LLAMA3_PATTERN, ignoreMerges: true };
const QWEN2: PreSpec = { split: QWEN2_PATTERN, nfc: true };
const DIGITS: PreSpec = { split: 'digits' };
const PRE_SPECS: Record<string, PreSpec> = {
  default: { split: 'gpt2' },
  'gpt-2': { split: 'gpt2' },
  mpt: { split: 'gpt2', nfc: true },
  olmo: { split: 'gpt2' },
  'llama-bpe': LLAMA3,
  llama3: LLAMA3,
  dbrx: LLAMA3,
  'smaug-bpe': LLAMA3,
  qwen2: QWEN2,
  stablelm2: QWEN2,
  qwen35: { split: QWEN35_PATTERN },
  starcoder: DIGITS,
  refact: DIGITS,
  'command-r': { split: 'digits', nfc: true },
  smollm: DIGITS,
};

/** The `pre` values for which llama.cpp adds BOS when the file does not say. */
const LLAMA3_PRES = new Set(['llama-bpe', 'llama3']);

/** The GGUF `pre` values ggufTokenizer knows for gpt2-type vocabularies. */
export const GGUF_PRE_TOKENIZERS = Object.keys(PRE_SPECS);

/** tokenizer.json and tokenizer_config.json equivalent to the GGUF vocabulary. */
export interface GgufTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/**
 * Builds the Tokenizer of a GGUF file's metadata. Throws ModelFileError naming `file` and the key for a missing or
 * malformed vocabulary, an unsupported `tokenizer.ggml.model` or `pre`.
 */
export async function ggufTokenizer(metadata: ReadonlyMap<string, GgufValue>, file: string): Promise<Tokenizer> {
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles(metadata, file);
  return Tokenizer.fromJson(tokenizerJson, tokenizerConfig);
}

/** The HF tokenizer files of a GGUF vocabulary (what ggufTokenizer loads). */
export function ggufTokenizerFiles(md: ReadonlyMap<string, GgufValue>, file: string): GgufTokenizerFiles {
  const fail = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const model = md.get('tokenizer.ggml.model');
  const tokens = md.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || tokens.length === 0 || typeof tokens[0] !== 'string') fail('tokenizer.ggml.tokens is missing or not a list of strings');
  const list = tokens as string[];
  const n = list.length;
  const types = numbers(md.get('tokenizer.ggml.token_type'), n, 'tokenizer.ggml.token_type', fail) ?? new Float64Array(n).fill(1);

  // The vocabulary object: a token string seen twice keeps its first id (tokenizer.json cannot hold both).
  const vocab: Record<string, number> = Object.create(null);
  for (let id = 0; id < n; id++) if (!(list[id] in vocab)) vocab[list[id]] = id;
  const added: Record<string, unknown>[] = [];
  for (let id = 0; id < n; id++) {
    const t = types[id];
    if (t === TOKEN_UNKNOWN || t === TOKEN_CONTROL || t === TOKEN_USER_DEFINED) {
      added.push({ id, content: list[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== TOKEN_USER_DEFINED });
    }
  }
  const idToken = (key: string): string | undefined => {
    const v = md.get(`tokenizer.ggml.${key}`);
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < n ? list[v] : undefined;
  };
  const flag = (key: string): boolean | undefined => {
    const v = md.get(`tokenizer.ggml.${key}`);
    return typeof v === 'boolean' ? v : undefined;
  };
  const config: Record<string, unknown> = {
    bos_token: idToken('bos_token_id'),
    eos_token: idToken('eos_token_id'),
    unk_token: idToken('unknown_token_id'),
    pad_token: idToken('padding_token_id'),
    // llama.cpp's defaults (llama_vocab::impl::load): BOS for SentencePiece and Llama 3 vocabularies; never EOS.
    add_bos_token: flag('add_bos_token') ?? (model === 'llama' || (model === 'gpt2' && LLAMA3_PRES.has(md.get('tokenizer.ggml.pre') as string))),
    add_eos_token: flag('add_eos_token') ?? false,
    clean_up_tokenization_spaces: false,
  };
  const template = md.get('tokenizer.chat_template');
  if (typeof template === 'string') config.chat_template = template;
  for (const k of Object.keys(config)) if (config[k] === undefined) delete config[k];

  if (model === 'llama') {
    const scores = numbers(md.get('tokenizer.ggml.scores'), n, 'tokenizer.ggml.scores', fail) ?? fail('tokenizer.ggml.scores is missing');
    const prefix = flag('add_space_prefix') ?? true;
    const json = {
      version: '1.0',
      added_tokens: added,
      normalizer: {
        type: 'Sequence',
        normalizers: [
          ...(prefix ? [{ type: 'Prepend', prepend: '▁' }] : []),
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(prefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: 'BPE',
        unk_token: config.unk_token ?? null,
        fuse_unk: true,
        byte_fallback: true,
        vocab,
        ...sentencePieceMerges(list, vocab, scores),
      },
    };
    return { tokenizerJson: json, tokenizerConfig: config };
  }
  if (model === 'gpt2') {
    const merges = md.get('tokenizer.ggml.merges');
    if (!Array.isArray(merges) || (merges.length > 0 && typeof merges[0] !== 'string')) fail('tokenizer.ggml.merges is missing or not a list of strings');
    const pre = md.get('tokenizer.ggml.pre') ?? 'default';
    const spec = PRE_SPECS[pre as string] ?? fail(`tokenizer.ggml.pre "${String(pre)}" is not supported (${GGUF_PRE_TOKENIZERS.join(', ')})`);
    const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
    const preTokenizer =
      spec.split === 'gpt2'
        ? byteLevel(true)
        : spec.split === 'digits'
          ? { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] }
          : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: spec.split }, behavior: 'Isolated', invert: false }, byteLevel(false)] };
    const json = {
      version: '1.0',
      added_tokens: added,
      normalizer: spec.nfc ? { type: 'NFC' } : null,
      pre_tokenizer: preTokenizer,
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', unk_token: null, fuse_unk: false, byte_fallback: false, ignore_merges: spec.ignoreMerges ?? false, vocab, merges },
    };
    return { tokenizerJson: json, tokenizerConfig: config };
  }
  return fail(`tokenizer.ggml.model "${String(model)}" is not supported (llama, gpt2)`);
}

/**
 * SentencePiece merges from scores, as transformers' SentencePieceExtractor: for each piece in id order, its splits
 * into two vocabulary pieces sorted by (left id, right id); then a stable sort by the piece's score, highest first.
 * Their ranks (merge_ranks, see tokenizer/bpe-model.ts) are the dense ranks of the scores: pieces of equal score
 * merge leftmost first, as llama.cpp's SentencePiece tokenizer does (vocabularies converted from BPE ones carry one
 * score for every piece).
 */
function sentencePieceMerges(tokens: string[], vocab: Record<string, number>, scores: ArrayLike<number>): { merges: [string, string][]; merge_ranks: number[] } {
  const found: { left: string; right: string; score: number; l: number; r: number }[] = [];
  for (let id = 0; id < tokens.length; id++) {
    const piece = tokens[id];
    // Splitting costs O(length^2); a piece this long is no SentencePiece merge result (their pieces are at most a
    // few dozen chars), only an added token matched before BPE, so a hostile vocabulary cannot make this quadratic.
    if (vocab[piece] !== id || piece.length > MAX_MERGED_PIECE) continue;
    const local: typeof found = [];
    // Split between UTF-16 units but never inside a surrogate pair (both halves must be vocabulary strings).
    for (let i = 1; i < piece.length; i++) {
      const l = vocab[piece.slice(0, i)];
      const r = vocab[piece.slice(i)];
      if (l !== undefined && r !== undefined) local.push({ left: piece.slice(0, i), right: piece.slice(i), score: scores[id], l, r });
    }
    local.sort((a, b) => a.l - b.l || a.r - b.r);
    for (const m of local) found.push(m);
  }
  // Array.prototype.sort is stable.
  found.sort((a, b) => b.score - a.score);
  const ranks: number[] = [];
  for (let i = 0; i < found.length; i++) ranks.push(i > 0 && found[i].score === found[i - 1].score ? ranks[i - 1] : i);
  return { merges: found.map((m) => [m.left, m.right]), merge_ranks: ranks };
}

/** A numeric array metadata value of length n, or undefined when absent. */
function numbers(v: GgufValue | undefined, n: number, key: string, fail: (p: string) => never): ArrayLike<number> | undefined {
  if (v === undefined) return undefined;
  const ok = ArrayBuffer.isView(v) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array) && !(v instanceof DataView);
  if (!ok) fail(`${key} must be a numeric array`);
  const a = v as unknown as ArrayLike<number>;
  if (a.length !== n) fail(`${key} has ${a.length} entries, tokenizer.ggml.tokens ${n}`);
  return a;
}
