/**
 * The CPU backend (src/cpu/) end to end, through the engine: Hugging Face's goldens (greedy ids, top logprobs, the
 * argmax at every prompt position) on the embedded model and the shared test models with device 'cpu'; quantized
 * weights against the WebGPU path's quantized output; n > 1, seeds and prompt logprobs; device selection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SamplingParams, type LLM, type RequestOutput } from '../bindings/node/index.js';
import { cpuRunnerOf } from '../src/cpu/cpu-model-runner.js';
import { goldenChecks, goldenRun } from './helpers/golden-checks.js';
import { loadLLM } from './helpers/llm.js';
import { DEFAULT_MODEL, loadGoldens, modelDir } from './helpers/paths.js';

const goldens = loadGoldens();
const TRAINED = new Set(['stories260K', 'tinystories-656K']);
const CPU_MODELS = ['tinystories-656K', 'stories260K', 'llama3-rand', 'qwen2-rand', 'qwen3-rand', 'mistral-rand', 'phi3-rand', 'tiny-random-llama2', 'opt-rand', 'gpt2-rand', 'tiny-random-gpt2'];

describe('the embedded model on the CPU', () => {
  let llm: LLM;
  let outs: RequestOutput[];
  const g = goldens['tinystories-656K'];
  beforeAll(async () => {
    llm = await loadLLM(DEFAULT_MODEL, { device: 'cpu' });
    outs = await goldenRun(llm, g.prompts);
  });
  afterAll(() => llm?.dispose());
  it('runs on the CPU runner', () => {
    expect(cpuRunnerOf(llm.engine).limits.kvDtype).toBe('f32');
  });
  goldenChecks(g.prompts, () => outs, { allSteps: true });
});

describe.each(CPU_MODELS)('%s on the CPU', (model) => {
  const g = goldens[model];
  let llm: LLM;
  let outs: RequestOutput[];
  beforeAll(async () => {
    llm = await loadLLM(modelDir(model), { device: 'cpu' });
    outs = await goldenRun(llm, g.prompts);
  });
  afterAll(() => llm?.dispose());
  goldenChecks(g.prompts, () => outs, { allSteps: TRAINED.has(model) });
});
