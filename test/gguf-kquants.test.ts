/**
 * k-quant GGUF models end to end, against llama.cpp (node-llama-cpp on the CPU): a random Llama of width 256 (the
 * k-quants' block) written in the set-up as GGUF files of llama.cpp's mixes (Q4_K_M: q4_k with q6_k for attn_v,
 * ffn_down and the output; Q5_K_S-like: q5_k; Q2_K / Q3_K-like: q2_k with q3_k), quantized by our reference
 * quantizers (bit for bit ggml's, test/quant-kquants.test.ts), with stories260K's vocabulary; and its f32 twin as a
 * Hugging Face folder, which `quantization: 'q4_k'` must turn into exactly the q4_k GGUF's weights.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaContextSequence } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import { FsByteSource } from '../bindings/node/fs-source.js';
import { blockFormat, formatOfGgmlType, quantizeRows, type QuantFormat } from '../src/layers/quant/index.js';
import { readGgufHeader, type GgufValue } from '../src/loader/gguf.js';
import { unpermuteRotaryRows } from '../src/models/gguf-config.js';
import type { LinearWeight } from '../src/layers/linear.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { F32, writeGguf, type GgufTensorOut } from './helpers/gguf-writer.js';
import { loadLLM } from './helpers/llm.js';
import { MODELS } from './helpers/paths.js';
import { prng } from './helpers/tokenizer-strings.js';

const H = 256;
const LAYERS = 2;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = H / HEADS;
const FFN = 512;
const STEPS = 12;
const PROMPTS = ['Once upon a time there was', 'The cat sat on the mat and looked at the'];
const GGML_ID: Record<string, number> = { F32: 0, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q2_K: 10, Q3_K: 11 };

const tmp = mkdtempSync(join(tmpdir(), 'gguf-kquants-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The random model's f32 tensors in GGUF names, layout and (rotary-permuted q / k) row order: [name, ne, values]. */
function randomModel(vocab: number): [string, number[], Float32Array][] {
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
const MIXES: Record<string, (name: string) => string> = {
  Q4_K_M: (n) => (/attn_v|ffn_down|^output\./.test(n) ? 'Q6_K' : 'Q4_K'),
  Q5_K_S: (n) => (/^output\./.test(n) ? 'Q6_K' : 'Q5_K'),
  Q2_K: (n) => (/attn_v|ffn_down/.test(n) ? 'Q3_K' : /^output\./.test(n) ? 'Q6_K' : 'Q2_K'),
  Q4_K: () => 'Q4_K',
};

let llamaCpp: Promise<Llama> | null = null;
const llama = () => (llamaCpp ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }));

async function llamaCppRun(file: string, text: string) {
  const model = await (await llama()).loadModel({ modelPath: file });
  try {
    const prompt = [model.tokens.bos as number, ...(model.tokenize(text, false) as number[])];
    const ctx = await model.createContext({ contextSize: 128 });
    const greedy: number[] = [];
    const probs: Map<number, number>[] = [];
    for await (const r of ctx.getSequence().evaluateWithMetadata(prompt as unknown as Parameters<LlamaContextSequence['evaluate']>[0], { probabilities: true }, { temperature: 0 })) {
      greedy.push(r.token as number);
      probs.push(r.probabilities as Map<number, number>);
      if (greedy.length >= STEPS) break;
    }
    await ctx.dispose();
    return { prompt, greedy, probs };
  } finally {
    await model.dispose();
  }
}

describe('k-quant GGUF files (a random Llama of width 256) against llama.cpp', async () => {
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
  const model = randomModel(vocab);
  const files: Record<string, string> = {};
  for (const [mix, typeOf] of Object.entries(MIXES)) {
    const tensors: GgufTensorOut[] = model.map(([name, ne, v]) => {
      if (ne.length === 1) return { name, type: 0, ne, data: new Uint8Array(v.buffer.slice(0)) };
      const type = typeOf(name);
      return { name, type: GGML_ID[type], ne, data: quantizeRows(formatOfGgmlType(type)!, v, ne[1], ne[0]) };
    });
    files[mix] = join(tmp, `random-${mix}.gguf`);
    writeFileSync(files[mix], writeGguf(metadata, tensors));
  }

  // [mix, largest |logprob difference| of tokens with p > 5%, largest |probability difference| in the top 20]:
  // llama.cpp's CPU kernels quantize activations to q8_K for k-quant weights (measured: up to 0.073 / 0.06 / <0.1).
  const cases: [string, number, number][] = [['Q4_K_M', 0.1, 0.02], ['Q5_K_S', 0.1, 0.02], ['Q2_K', 0.1, 0.02]];
  for (const [mix, tol, ptol] of cases) {
    it(`${mix}: prompt ids, top-20 logprobs along llama.cpp's greedy path, greedy ids, weight bytes as the file's`, async () => {
      const llm = await loadLLM(files[mix]);
      try {
        for (const text of PROMPTS) {
          const ref = await llamaCppRun(files[mix], text);
          const [scored] = await llm.generate({ promptTokenIds: [...ref.prompt, ...ref.greedy] }, new SamplingParams({ temperature: 0, maxTokens: 1, promptLogprobs: 20 }));
          for (let s = 0; s < STEPS; s++) {
            const dist = scored.promptLogprobs![ref.prompt.length + s]!;
            const top = [...dist.entries()].sort((a, b) => b[1].logprob - a[1].logprob);
            for (const [id, lp] of top) {
              const p = ref.probs[s].get(id)!;
              expect(Math.abs(Math.exp(lp.logprob) - p), `${mix} step ${s} token ${id}`).toBeLessThan(ptol);
              if (lp.logprob > -3) expect(Math.abs(lp.logprob - Math.log(p)), `${mix} step ${s} token ${id}`).toBeLessThan(tol);
            }
            expect(dist.get(ref.greedy[s])!.logprob, `step ${s}`).toBeGreaterThan(top[0][1].logprob - tol);
          }
          const [out] = await llm.generate(text, new SamplingParams({ temperature: 0, maxTokens: STEPS, logprobs: 2, ignoreEos: true }));
          expect(out.promptTokenIds).toEqual(ref.prompt);
          for (let s = 0; s < STEPS; s++) {
            // Past a near tie the paths may part legitimately: compare up to it.
            const [a, b] = [...out.outputs[0].logprobs![s].values()].map((l) => l.logprob).sort((x, y) => y - x);
            if (a - b < 2 * tol) break;
            expect(out.outputs[0].tokenIds[s], `step ${s}`).toBe(ref.greedy[s]);
          }
        }
        const h = await readGgufHeader(await FsByteSource.open(files[mix]));
        const fileBytes = h.tensors.filter((t) => t.shape.length === 2).reduce((n, t) => n + t.byteLength, 0);
        const weights = new Set<LinearWeight>();
        const visit = (v: unknown, depth: number): void => {
          if (!v || typeof v !== 'object' || depth > 8) return;
          if ('method' in v) weights.add(v as LinearWeight);
          else for (const x of Object.values(v)) visit(x, depth + 1);
        };
        visit(gpuRunnerOf(llm.engine).model.weights, 0);
        const gpuBytes = [...weights].reduce((n, w) => n + w.method.bytes(w), 0);
        expect(gpuBytes / fileBytes).toBeGreaterThanOrEqual(1);
        expect(gpuBytes / fileBytes).toBeLessThan(1.02);
      } finally {
        await llm.dispose();
      }
    });
  }

  it("quantization: 'q4_k' on the f32 Hugging Face twin gives exactly the q4_k GGUF's logprobs", async () => {
    // The HF folder: HF names, q / k rows un-permuted, stories260K's tokenizer files.
    const dir = join(tmp, 'hf');
    mkdirSync(dir, { recursive: true });
    const hfName: Record<string, string> = {
      attn_norm: 'input_layernorm', attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj',
      attn_output: 'self_attn.o_proj', ffn_norm: 'post_attention_layernorm', ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
    };
    const named: [string, number[], Uint8Array][] = model.map(([name, ne, v]) => {
      const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
      const hf = m ? `model.layers.${m[1]}.${hfName[m[2]]}.weight` : { 'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight' }[name]!;
      let bytes = new Uint8Array(v.buffer.slice(0));
      if (m && (m[2] === 'attn_q' || m[2] === 'attn_k')) bytes = unpermuteRotaryRows(bytes, m[2] === 'attn_q' ? HEADS : KV_HEADS, 4 * ne[0]);
      return [hf, [...ne].reverse(), bytes];
    });
    writeFileSync(join(dir, 'model.safetensors'), safetensors(named));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: H, intermediate_size: FFN, num_hidden_layers: LAYERS,
      num_attention_heads: HEADS, num_key_value_heads: KV_HEADS, vocab_size: vocab, max_position_embeddings: 256, rms_norm_eps: 1e-5,
      rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
    }));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(MODELS, 'stories260K', f), join(dir, f));
    const params = new SamplingParams({ temperature: 0, maxTokens: 8, logprobs: 5, ignoreEos: true });
    // The embeddings and the LM head stay dense with quantization (a GGUF q4_k file quantizes them): compare with a
    // GGUF whose embedding and output are F32.
    const tensors: GgufTensorOut[] = model.map(([name, ne, v]) => {
      if (ne.length === 1 || name === 'token_embd.weight' || name === 'output.weight') return { name, type: 0, ne, data: new Uint8Array(v.buffer.slice(0)) };
      return { name, type: GGML_ID.Q4_K, ne, data: quantizeRows('q4_k' as QuantFormat, v, ne[1], ne[0]) };
    });
    const file = join(tmp, 'random-q4_k-dense-ends.gguf');
    writeFileSync(file, writeGguf(metadata, tensors));
    const a = await loadLLM(dir, { quantization: 'q4_k' });
    const b = await loadLLM(file);
    try {
      const [x] = await a.generate({ promptTokenIds: [1, 400, 300, 200, 100] }, params);
      const [y] = await b.generate({ promptTokenIds: [1, 400, 300, 200, 100] }, params);
      expect(x.outputs[0].tokenIds).toEqual(y.outputs[0].tokenIds);
      for (let s = 0; s < 8; s++) for (const [id, lp] of y.outputs[0].logprobs![s]) expect(x.outputs[0].logprobs![s].get(id)!.logprob).toBeCloseTo(lp.logprob, 5);
    } finally {
      await a.dispose();
      await b.dispose();
    }
    expect(blockFormat('q4_k').blockElems).toBe(256);
  });
});

/** A safetensors file of F32 tensors. */
function safetensors(tensors: [string, number[], Uint8Array][]): Uint8Array {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + data.length] };
    at += data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let o = 8 + json.length;
  for (const [, , data] of tensors) {
    out.set(data, o);
    o += data.length;
  }
  return out;
}
