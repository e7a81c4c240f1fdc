/**
 * A random Llama of width 256 (the k-quants' and iq4_xs's block) as GGUF files of llama.cpp's mixes, with stories260K's
 * vocabulary, for the k-quant and iq4 tests against llama.cpp (test/gguf-kquants.test.ts) and the browser test.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsByteSource } from '../../bindings/node/fs-source.js';
import { formatOfGgmlType, quantizeRows } from '../../src/layers/quant/index.js';
import { readGgufHeader, type GgufValue } from '../../src/loader/gguf.js';
import { F32, writeGguf, type GgufTensorOut } from './gguf-writer.js';
import { MODELS } from './paths.js';
import { prng } from './tokenizer-strings.js';

export const H = 256;
export const LAYERS = 2;
export const HEADS = 4;
export const KV_HEADS = 2;
export const HEAD_DIM = H / HEADS;
export const FFN = 512;
export const GGML_ID: Record<string, number> = { F32: 0, Q4_0: 2, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q2_K: 10, Q3_K: 11, IQ4_NL: 20, IQ4_XS: 23 };

/** The random model's f32 tensors in GGUF names, layout and (rotary-permuted q / k) row order: [name, ne, values]. */
export function randomModel(vocab: number): [string, number[], Float32Array][] {
  const rand = prng(2026);
  const normal = (n: number, std: number) => Float32Array.from({ length: n }, () => {
    const u = Math.max(rand(), 1e-12);
    return std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  });
  const ones = (n: number) => Float32Array.from({ length: n }, () => 1 + 0.1 * (rand() - 0.5));
  const t: [string, number[], Float32Array][] = [['token_embd.weight', [H, vocab], normal(vocab * H, 0.5)]];
  for (let l = 0; l < LAYERS; l++) {
    const b = `blk.${l}.`;
    t.push([`${b}attn_norm.weight`, [H], ones(H)]);
    t.push([`${b}attn_q.weight`, [H, H], normal(H * H, 0.08)]);
    t.push([`${b}attn_k.weight`, [H, KV_HEADS * HEAD_DIM], normal(KV_HEADS * HEAD_DIM * H, 0.08)]);
    t.push([`${b}attn_v.weight`, [H, KV_HEADS * HEAD_DIM], normal(KV_HEADS * HEAD_DIM * H, 0.08)]);
    t.push([`${b}attn_output.weight`, [H, H], normal(H * H, 0.08)]);
    t.push([`${b}ffn_norm.weight`, [H], ones(H)]);
    t.push([`${b}ffn_gate.weight`, [H, FFN], normal(FFN * H, 0.08)]);
    t.push([`${b}ffn_up.weight`, [H, FFN], normal(FFN * H, 0.08)]);
    t.push([`${b}ffn_down.weight`, [FFN, H], normal(H * FFN, 0.06)]);
  }
  t.push(['output_norm.weight', [H], ones(H)]);
  t.push(['output.weight', [H, vocab], normal(vocab * H, 0.08)]);
  return t;
}

/** llama.cpp-style mixes: the type of each matrix by its GGUF name. */
export const MIXES: Record<string, (name: string) => string> = {
  Q4_K_M: (n) => (/attn_v|ffn_down|^output\./.test(n) ? 'Q6_K' : 'Q4_K'),
  Q5_K_S: (n) => (/^output\./.test(n) ? 'Q6_K' : 'Q5_K'),
  Q2_K: (n) => (/attn_v|ffn_down/.test(n) ? 'Q3_K' : /^output\./.test(n) ? 'Q6_K' : 'Q2_K'),
  Q4_K: () => 'Q4_K',
  // As llama-quantize's IQ4_NL / IQ4_XS (llama-quant.cpp): output in q6_k; attn_v stays iq4 below 4 query heads per
  // KV head, ffn_down below 8 layers; iq4_xs's fallback to iq4_nl (rows not whole 256s) does not arise here.
  IQ4_NL: (n) => (/^output\./.test(n) ? 'Q6_K' : 'IQ4_NL'),
  // As llama-quantize's Q4_0: q4_0 everywhere (the embedding too) but the output, in q6_k.
  Q4_0: (n) => (/^output\./.test(n) ? 'Q6_K' : 'Q4_0'),
  IQ4_XS: (n) => (/^output\./.test(n) ? 'Q6_K' : 'IQ4_XS'),
};

/** The model: its GGUF metadata (stories260K's vocabulary), vocabulary size and f32 tensors. */
export async function kquantModel() {
  const storiesSrc = await FsByteSource.open(join(MODELS, 'gguf', 'stories260K.gguf'));
  const stories = await readGgufHeader(storiesSrc);
  await storiesSrc.close();
  const vocab = (stories.metadata.get('tokenizer.ggml.tokens') as string[]).length;
  const metadata: [string, GgufValue | F32][] = [
    ['general.architecture', 'llama'],
    ['llama.context_length', 256], ['llama.embedding_length', H], ['llama.block_count', LAYERS], ['llama.feed_forward_length', FFN],
    ['llama.rope.dimension_count', HEAD_DIM], ['llama.attention.head_count', HEADS], ['llama.attention.head_count_kv', KV_HEADS],
    ['llama.attention.layer_norm_rms_epsilon', new F32(1e-5)], ['llama.rope.freq_base', new F32(10000)],
    ...[...stories.metadata.entries()].filter(([k]) => k.startsWith('tokenizer.')),
  ];
  return { metadata, vocab, tensors: randomModel(vocab) };
}

/** Writes the model as `dir/random-{mix}.gguf` and returns the path. */
export function writeKquantGguf(model: Awaited<ReturnType<typeof kquantModel>>, mix: string, dir: string): string {
  const typeOf = MIXES[mix];
  const tensors: GgufTensorOut[] = model.tensors.map(([name, ne, v]) => {
    if (ne.length === 1) return { name, type: 0, ne, data: new Uint8Array(v.buffer.slice(0)) };
    const type = typeOf(name);
    return { name, type: GGML_ID[type], ne, data: quantizeRows(formatOfGgmlType(type)!, v, ne[1], ne[0]) };
  });
  const file = join(dir, `random-${mix}.gguf`);
  writeFileSync(file, writeGguf(model.metadata, tensors));
  return file;
}
