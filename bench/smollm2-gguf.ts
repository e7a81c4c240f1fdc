/**
 * SmolLM2-135M-shaped GGUF files with random weights, for benches that run the same file on our CPU backend and on
 * llama.cpp (node-llama-cpp, wllama): hidden 576, 30 layers, 9 heads / 3 KV heads (head_dim 64), intermediate
 * 1536, vocab 49152, tied embeddings (no output.weight), as HuggingFaceTB/SmolLM2-135M's config.json.
 *
 * The matrices are random quantized blocks written directly (a random f16 scale near a fixed value, random quants),
 * so a file of 135M parameters takes a second, not a minute of quantizing. The vocabulary is stories260K's 512
 * SentencePiece tokens padded with unique normal tokens (`▁w{i}`, low scores): any text tokenizes, and the
 * benches feed token ids anyway. Written once per format into `dir` (kept when already there).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsByteSource } from '../bindings/node/fs-source.js';
import { readGgufHeader, type GgufValue } from '../src/loader/gguf.js';
import { F32, writeGguf, type GgufTensorOut } from '../test/helpers/gguf-writer.js';

export const SMOLLM2 = { hidden: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, vocab: 49152 } as const;
/** The borrowed vocabulary's size: ids from here on are the padding tokens `▁w{id - PADDING_FROM}`. */
export const PADDING_FROM = 512;

/**
 * The text of a prompt of BOS (1) then padding-token ids, for engines that take text only (wllama): one word
 * `w{i}` per token, which llama.cpp's SentencePiece tokenizer reads back as exactly those ids (BOS added by it).
 */
export function paddingText(ids: readonly number[]): string {
  if (ids[0] !== 1 || ids.slice(1).some((t) => t < PADDING_FROM)) throw new Error('paddingText: expects BOS then padding-token ids');
  return ids.slice(1).map((t) => `w${t - PADDING_FROM}`).join(' ');
}

/** ggml type id, bytes per block of 32, general.file_type. */
const FORMATS = { q8_0: { type: 8, block: 34, fileType: 7 }, q4_0: { type: 2, block: 18, fileType: 2 } } as const;
export type BenchQuant = keyof typeof FORMATS;

/** f16 bits of a positive normal value (truncating the mantissa: these are random scales). */
function f16Bits(v: number): number {
  const e = Math.floor(Math.log2(v));
  const m = Math.floor((v / 2 ** e - 1) * 1024);
  return ((e + 15) << 10) | m;
}

/** Random blocks of `format` for a [rows, cols] matrix whose values have a standard deviation near `std`. */
function randomBlocks(format: BenchQuant, rows: number, cols: number, std: number, seed: number): Uint8Array {
  const { block } = FORMATS[format];
  const n = (rows * cols) / 32;
  const out = new Uint8Array(n * block);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s;
    out[i + 1] = s >>> 8;
    out[i + 2] = s >>> 16;
    out[i + 3] = s >>> 24;
  }
  // Uniform quants: q8_0 in [-128, 127] (std ~74), q4_0 nibbles minus 8 (std ~4.6).
  const d = std / (format === 'q8_0' ? 74 : 4.6);
  for (let b = 0; b < n; b++) {
    const bits = f16Bits(d * (0.75 + 0.5 * (out[b * block] / 255)));
    out[b * block] = bits & 255;
    out[b * block + 1] = bits >> 8;
  }
  return out;
}

/** The GGUF metadata: llama architecture of SmolLM2-135M's shape, the padded stories260K vocabulary. */
async function metadata(format: BenchQuant, storiesGguf: string): Promise<[string, GgufValue | F32][]> {
  const src = await FsByteSource.open(storiesGguf);
  const stories = (await readGgufHeader(src)).metadata;
  await src.close();
  const base = stories.get('tokenizer.ggml.tokens') as string[];
  const baseScores = stories.get('tokenizer.ggml.scores') as Float32Array;
  const baseTypes = stories.get('tokenizer.ggml.token_type') as Int32Array;
  const V = SMOLLM2.vocab;
  if (base.length !== PADDING_FROM) throw new Error(`${storiesGguf}: expected a vocabulary of ${PADDING_FROM} tokens, got ${base.length}`);
  const tokens = [...base, ...Array.from({ length: V - base.length }, (_, i) => `▁w${i}`)];
  const scores = new Float32Array(V).fill(-1e4);
  scores.set(baseScores);
  const types = new Int32Array(V).fill(1);
  types.set(baseTypes);
  const { hidden, layers, heads, kvHeads, ffn } = SMOLLM2;
  return [
    ['general.architecture', 'llama'], ['general.name', `SmolLM2-135M-shaped random ${format}`], ['general.file_type', FORMATS[format].fileType],
    ['llama.context_length', 8192], ['llama.embedding_length', hidden], ['llama.block_count', layers], ['llama.feed_forward_length', ffn],
    ['llama.rope.dimension_count', hidden / heads], ['llama.attention.head_count', heads], ['llama.attention.head_count_kv', kvHeads],
    ['llama.attention.layer_norm_rms_epsilon', new F32(1e-5)], ['llama.rope.freq_base', new F32(100000)], ['llama.vocab_size', V],
    ['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', tokens], ['tokenizer.ggml.scores', scores], ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.bos_token_id', 1], ['tokenizer.ggml.eos_token_id', 2], ['tokenizer.ggml.unknown_token_id', 0],
  ];
}

/** Writes (once) and returns `dir/smollm2-135m-random-{format}.gguf`; `storiesGguf` lends the vocabulary. */
export async function smollm2Gguf(format: BenchQuant, dir: string, storiesGguf: string): Promise<string> {
  const file = join(dir, `smollm2-135m-random-${format}.gguf`);
  if (existsSync(file) && readFileSync(file).subarray(0, 4).toString() === 'GGUF') return file;
  const { hidden, layers, heads, kvHeads, ffn, vocab } = SMOLLM2;
  const kvDim = (hidden / heads) * kvHeads;
  const { type } = FORMATS[format];
  let seed = 2026;
  const ones = (n: number) => new Uint8Array(new Float32Array(n).fill(1).buffer);
  // ne = [cols, rows] (ggml order); values ~ N(0, 0.02) as the checkpoint's init, the down projection smaller.
  const matrix = (name: string, cols: number, rows: number, std = 0.02): GgufTensorOut => ({ name, type, ne: [cols, rows], data: randomBlocks(format, rows, cols, std, seed++) });
  const tensors: GgufTensorOut[] = [matrix('token_embd.weight', hidden, vocab)];
  for (let l = 0; l < layers; l++) {
    const b = `blk.${l}.`;
    tensors.push(
      { name: `${b}attn_norm.weight`, type: 0, ne: [hidden], data: ones(hidden) },
      matrix(`${b}attn_q.weight`, hidden, hidden), matrix(`${b}attn_k.weight`, hidden, kvDim), matrix(`${b}attn_v.weight`, hidden, kvDim),
      matrix(`${b}attn_output.weight`, hidden, hidden),
      { name: `${b}ffn_norm.weight`, type: 0, ne: [hidden], data: ones(hidden) },
      matrix(`${b}ffn_gate.weight`, hidden, ffn), matrix(`${b}ffn_up.weight`, hidden, ffn), matrix(`${b}ffn_down.weight`, ffn, hidden, 0.01),
    );
  }
  tensors.push({ name: 'output_norm.weight', type: 0, ne: [hidden], data: ones(hidden) });
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, writeGguf(await metadata(format, storiesGguf), tensors));
  return file;
}
