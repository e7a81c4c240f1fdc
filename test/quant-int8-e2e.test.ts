/**
 * The int8-activation GEMVs end to end (src/layers/quant/kernels-i8.ts, forced on over lavapipe through ctx.tuning:
 * the separate quantize pass and linear.q.gemv.i8, and the staged GEMV quantizing its inputs itself):
 * greedy decoding of a GGUF Q8_0 file, a Q4_K_M GGUF (q4_k and q6_k: test/helpers/kquant-model.ts's random Llama of
 * width 256) and a checkpoint quantized to q4_0 / q5_1 on load gives the same ids
 * with int8 activations as with float ones, up to the first step whose top two candidates lie within the int8
 * rounding's reach of each other (then the paths may part legitimately); the logprobs of the float run's tokens
 * stay within a bound along the way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import type { LLM } from '../bindings/node/index.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { kquantModel, writeKquantGguf } from './helpers/kquant-model.js';
import { loadLLM } from './helpers/llm.js';
import { MODELS } from './helpers/paths.js';

const PROMPTS = ['Once upon a time', 'The little dog saw a big red ball and', 'Lily and Tom went to the park. They'];
const STEPS = 24;
/**
 * The largest change of a chosen token's logprob on the common path, and the top-two margin (logprob) below which
 * the int8 and float paths may pick differently. Measured on lavapipe: changes up to 0.058 (Q8_0 GGUF), 0.071
 * (random Q4_K_M), 0.049 (q4_0), 0.066 (q5_1), as llama.cpp's own q8 activations move tinystories-656K-q8_0 by up
 * to 0.12 (test/gguf-models.test.ts); divergences at margins 0.005-0.04.
 */
const LOGPROB_TOL = 0.15;
const MARGIN = 0.15;

/** The GEMV's activations: float, int8 from a separate quantize pass, int8 quantized in the GEMV's stage. */
type Mode = 'float' | 'separate' | 'staged';

/** Greedy ids, each step's chosen logprob and top-two margin, with the GEMVs' activations of `mode`. */
async function greedy(llm: LLM, mode: Mode, text: string) {
  const runner = gpuRunnerOf(llm.engine);
  const stage = mode === 'staged' || runner.ctx.tuning.quantGemvStage;
  runner.ctx.tuning = { ...runner.ctx.tuning, quantGemvStage: stage, quantGemvInt8MinTokens: mode === 'separate' ? 1 : 0, quantGemvStageInt8: mode === 'staged' ? 8 : 0 };
  runner.clearGraphs();
  const [out] = await llm.generate(text, new SamplingParams({ temperature: 0, maxTokens: STEPS, logprobs: 2, ignoreEos: true }));
  const o = out.outputs[0];
  return o.tokenIds.map((id, s) => {
    const lps = [...o.logprobs![s].values()].map((l) => l.logprob).sort((a, b) => b - a);
    return { id, logprob: o.logprobs![s].get(id)!.logprob, margin: lps[0] - lps[1] };
  });
}

describe('int8-activation quantized GEMV end to end (forced on over lavapipe)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'quant-int8-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const models: [string | (() => Promise<string>), Parameters<typeof loadLLM>[1]][] = [
    [join(MODELS, 'gguf', 'tinystories-656K-q8_0.gguf'), {}],
    [async () => writeKquantGguf(await kquantModel(), 'Q4_K_M', tmp), {}],
    [join(MODELS, 'tinystories-656K'), { quantization: 'q4_0' }],
    [join(MODELS, 'tinystories-656K'), { quantization: 'q5_1' }],
  ];
  for (const [file, opts] of models) {
    const model = typeof file === 'string' ? file : 'random-Q4_K_M.gguf';
    it(`${model.split('/').pop()}${opts?.quantization ? ` as ${opts.quantization}` : ''}: greedy ids with int8 activations equal the float GEMV's`, async () => {
      const llm = await loadLLM(typeof file === 'string' ? file : await file(), opts);
      let moved = 0; // the largest logprob change on the common path: the int8 GEMV did run
      try {
        expect(gpuRunnerOf(llm.engine).ctx.packedDot).toBe(true);
        for (const text of PROMPTS) {
          const off = await greedy(llm, 'float', text);
          for (const mode of ['separate', 'staged'] as const) {
            const on = await greedy(llm, mode, text);
            let same = 0;
            while (same < STEPS && on[same].id === off[same].id) {
              moved = Math.max(moved, Math.abs(on[same].logprob - off[same].logprob));
              same++;
            }
            console.log(`${model.split('/').pop()} ${opts?.quantization ?? ''} ${mode} '${text}': ${same} of ${STEPS} equal${same < STEPS ? `, then a margin of ${off[same].margin.toFixed(4)}` : ''}`);
            // A divergence only where the float run's top two were within the int8 rounding's reach.
            if (same < STEPS) expect(off[same].margin).toBeLessThan(MARGIN);
          }
        }
        console.log(`${model.split('/').pop()} ${opts?.quantization ?? ''}: largest logprob change ${moved.toExponential(2)}`);
        expect(moved).toBeGreaterThan(0);
        expect(moved).toBeLessThan(LOGPROB_TOL);
      } finally {
        await llm.dispose();
      }
    }, 300_000); // three modes' pipelines for each format of the file: ~50 s on a loaded 2-core machine, 120+ under CI beside it
  }
});
