/**
 * k-quant and iq4 GGUF models end to end, against llama.cpp (node-llama-cpp on the CPU): a random Llama of width 256
 * (the k-quants' block) written in the set-up as GGUF files of llama.cpp's mixes (Q4_K_M: q4_k with q6_k for attn_v,
 * ffn_down and the output; Q5_K_S-like: q5_k; Q2_K / Q3_K-like: q2_k with q3_k; IQ4_NL / IQ4_XS: iq4_nl / iq4_xs
 * with a q6_k output, the embedding included; Q4_0: q4_0 with a q6_k output, on the CPU backend), quantized by our reference quantizers (bit for bit ggml's, test/quant-kquants.test.ts,
 * test/quant-iq4.test.ts), with stories260K's vocabulary; and its f32 twin as a
 * Hugging Face folder, which `quantization: 'q4_k'` must turn into exactly the q4_k GGUF's weights.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaContextSequence } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import { FsByteSource } from '../bindings/node/fs-source.js';
import { blockFormat, quantizeRows, type QuantFormat } from '../src/layers/quant/index.js';
import { readGgufHeader } from '../src/loader/gguf.js';
import { unpermuteRotaryRows } from '../src/models/gguf-config.js';
import type { LinearWeight } from '../src/layers/linear.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { writeGguf, type GgufTensorOut } from './helpers/gguf-writer.js';
import { FFN, GGML_ID, H, HEADS, KV_HEADS, kquantModel, LAYERS, MIXES, writeKquantGguf } from './helpers/kquant-model.js';
import { loadLLM } from './helpers/llm.js';
import { MODELS } from './helpers/paths.js';

const STEPS = 12;
const PROMPTS = ['Once upon a time there was', 'The cat sat on the mat and looked at the'];

const tmp = mkdtempSync(join(tmpdir(), 'gguf-kquants-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

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

describe('k-quant and iq4 GGUF files (a random Llama of width 256) against llama.cpp', async () => {
  const km = await kquantModel();
  const { metadata, vocab } = km;
  const model = km.tensors;
  const files: Record<string, string> = {};
  for (const mix of Object.keys(MIXES)) files[mix] = writeKquantGguf(km, mix, tmp);

  // [mix, largest |logprob difference| of tokens with p > 5%, largest |probability difference| in the top 20]:
  // llama.cpp's CPU kernels quantize activations to q8_K for k-quant and iq4_xs weights, to q8_0 for iq4_nl
  // (measured: up to 0.073 / 0.06 / <0.1 for the k-quants).
  // The iq4 and q4_0 files also on the CPU backend (its kernels read the blocks packed; q4_0 and iq4_nl in groups
  // of 4 rows).
  const cases: [string, number, number, ('webgpu' | 'cpu')?][] = [
    ['Q4_K_M', 0.1, 0.02], ['Q5_K_S', 0.1, 0.02], ['Q2_K', 0.1, 0.02], ['IQ4_NL', 0.1, 0.02], ['IQ4_XS', 0.1, 0.02],
    ['IQ4_NL', 0.1, 0.02, 'cpu'], ['IQ4_XS', 0.1, 0.02, 'cpu'], ['Q4_0', 0.1, 0.02, 'cpu'],
  ];
  for (const [mix, tol, ptol, device] of cases) {
    const gpu = device !== 'cpu';
    it(`${mix}${gpu ? '' : ' on the CPU backend'}: prompt ids, top-20 logprobs along llama.cpp's greedy path, greedy ids${gpu ? ", weight bytes as the file's" : ''}`, async () => {
      const llm = await loadLLM(files[mix], device ? { device } : {});
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
        if (!gpu) return;
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
    }, 300_000); // two llama.cpp runs and ours: minutes on a loaded 2-core machine
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
