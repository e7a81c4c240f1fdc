import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGenerationConfig } from '../src/config/generation-config.js';
import { ropeAttentionScaling, ropeInvFreq, type ModelConfig } from '../src/config/model-config.js';
import { parseModelConfig } from '../src/models/registry.js';
import { ModelFileError } from '../src/errors.js';
import { paramCount } from '../src/models/registry.js';
import { MODELS, modelDir } from './helpers/paths.js';

const BENCH = resolve(MODELS, '../bench-models');
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const modelFolders = readdirSync(MODELS).filter((d) => existsSync(join(MODELS, d, 'config.json')));
const load = (name: string) => parseModelConfig(readFileSync(join(modelDir(name), 'config.json'), 'utf8'), `${name}/config.json`);

/** Expects `fn` to throw a ModelFileError naming `file` whose message matches every pattern. */
function expectFileError(fn: () => unknown, file: string, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelFileError);
  expect((err as ModelFileError).file).toBe(file);
  for (const p of patterns) expect((err as Error).message).toMatch(p);
}

describe('parseModelConfig on every test checkpoint', () => {
  it('finds the expected folders', () => {
    expect(modelFolders.sort()).toEqual(
      [
        'gpt2-rand', 'llama3-rand', 'mistral-rand', 'opt-rand', 'phi3-rand', 'qwen2-rand', 'qwen3-rand', 'stories260K',
        'tiny-random-gpt2', 'tiny-random-llama2', 'tinystories-656K', 'tinystories-656K-bf16',
      ].sort(),
    );
  });

  it.each(modelFolders)('%s parses with consistent shapes', (name) => {
    const cfg = load(name);
    expect(cfg.numHeads % cfg.numKvHeads).toBe(0);
    expect(cfg.headDim).toBeGreaterThan(0);
    if (cfg.rope) expect(ropeInvFreq(cfg)).toHaveLength(cfg.rope.rotaryDim / 2);
    expect(cfg.raw).toEqual(readJson(join(modelDir(name), 'config.json')));
  });

  const expected: Record<string, Partial<ModelConfig>> = {
    stories260K: {
      modelType: 'llama', hiddenSize: 64, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, intermediateSize: 172,
      vocabSize: 512, maxModelLen: 512, tieWordEmbeddings: true, eosTokenIds: [2], bosTokenId: 1, dtype: 'float32',
      norm: 'rms', normEps: 1e-5, act: 'silu', gatedMlp: true, positions: 'rope', qkvBias: false,
    },
    'tinystories-656K': { hiddenSize: 128, numLayers: 2, headDim: 16, normEps: 1e-6, tieWordEmbeddings: true, vocabSize: 2048, dtype: 'float32' },
    'tinystories-656K-bf16': { hiddenSize: 128, dtype: 'bfloat16' },
    'tiny-random-llama2': { numHeads: 1, numKvHeads: 1, headDim: 16, tieWordEmbeddings: false, dtype: 'float16', eosTokenIds: [1], bosTokenId: 0 },
    'llama3-rand': { numHeads: 4, numKvHeads: 2, headDim: 8, eosTokenIds: [128001, 128008, 128009], tieWordEmbeddings: true, maxModelLen: 131072 },
    'qwen2-rand': { modelType: 'qwen2', qkvBias: true, oBias: false, mlpBias: false, normEps: 1e-6, slidingWindow: null, headDim: 4, numKvHeads: 2, tieWordEmbeddings: true },
    'qwen3-rand': { modelType: 'qwen3', hiddenSize: 16, headDim: 64, numHeads: 2, numKvHeads: 1, qkNorm: true, qkvBias: false, dtype: 'bfloat16', maxModelLen: 40960 },
    'mistral-rand': { modelType: 'mistral', slidingWindow: 8, numKvHeads: 1, headDim: 16, tieWordEmbeddings: false },
    'phi3-rand': { modelType: 'phi3', architecture: 'Phi3ForCausalLM', headDim: 16, vocabSize: 32064, eosTokenIds: [32000], slidingWindow: null, normEps: 1e-5, tieWordEmbeddings: false },
    'opt-rand': {
      modelType: 'opt', norm: 'layer', normEps: 1e-5, act: 'relu', gatedMlp: false, positions: 'learned', learnedPositionOffset: 2,
      rope: null, preNorm: true, finalNorm: true, qkvBias: true, oBias: true, mlpBias: true, normBias: true, intermediateSize: 64,
      wordEmbedProjDim: null, maxModelLen: 512, dtype: 'float16', tieWordEmbeddings: true, headDim: 8, eosTokenIds: [0],
    },
    'gpt2-rand': {
      modelType: 'gpt2', act: 'gelu_new', hiddenSize: 32, numLayers: 2, numHeads: 4, headDim: 8, intermediateSize: 128,
      maxModelLen: 512, positions: 'learned', learnedPositionOffset: 0, conv1dWeights: true, norm: 'layer', normBias: true,
      tieWordEmbeddings: true, dtype: 'float32',
    },
    'tiny-random-gpt2': { modelType: 'gpt2', numLayers: 5, act: 'gelu_new', eosTokenIds: [98], intermediateSize: 128, dtype: 'float32' },
  };
  it.each(Object.keys(expected))('%s has the expected normalized values', (name) => {
    expect(load(name)).toMatchObject(expected[name]);
  });

  it('reads rope from both the 4.x and the 5.x form', () => {
    expect(load('llama3-rand').rope).toEqual({
      theta: 500000,
      rotaryDim: 8,
      scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      attentionScaling: 1,
    });
    expect(load('qwen3-rand').rope).toEqual({ theta: 1e6, rotaryDim: 64, scaling: null, attentionScaling: 1 }); // 5.x
    expect(load('qwen2-rand').rope).toEqual({ theta: 1e6, rotaryDim: 4, scaling: null, attentionScaling: 1 }); // 4.x
    expect(load('phi3-rand').rope).toEqual({ theta: 10000, rotaryDim: 16, scaling: null, attentionScaling: 1 });
  });

  it('gives the same config for a 5.x file rewritten in the 4.x form', () => {
    const v5 = readJson(join(modelDir('qwen3-rand'), 'config.json'));
    const { rope_parameters, dtype, ...rest } = v5;
    const v4 = { ...rest, rope_theta: rope_parameters.rope_theta, rope_scaling: null, torch_dtype: dtype };
    const { raw: _a, ...a } = parseModelConfig(v5);
    const { raw: _b, ...b } = parseModelConfig(v4);
    expect(b).toEqual(a);
  });
});

describe('bench-models configs', () => {
  const cases: [string, number, number][] = [
    ['llama-3.2-1b', 1.24e9, 1_235_814_400],
    ['llama-3.1-8b', 8.03e9, 8_030_261_248],
    ['qwen2.5-0.5b', 0.494e9, 494_032_768],
    ['qwen3-0.6b', 0.596e9, 596_049_920],
    ['opt-125m', 0.125e9, 125_239_296],
  ];
  it.each(cases)('%s parses with about %d parameters', (name, approx, exact) => {
    const cfg = parseModelConfig(readFileSync(join(BENCH, name, 'config.json'), 'utf8'));
    const n = paramCount(cfg);
    expect(Math.abs(n - approx) / approx).toBeLessThan(0.01);
    expect(n).toBe(exact); // the published totals (tied heads counted once)
  });

  it('normalizes the Llama-3.1-8B config', () => {
    const cfg = parseModelConfig(readFileSync(join(BENCH, 'llama-3.1-8b', 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ headDim: 128, numKvHeads: 8, intermediateSize: 14336, tieWordEmbeddings: false, dtype: 'bfloat16' });
    expect(cfg.rope?.scaling).toMatchObject({ type: 'llama3', factor: 8 });
  });
});

describe('rope inverse frequencies', () => {
  /** Llama 3.1 scaling written out from the formula in float64, independently of src/config/rope.ts. */
  function llama3Reference(theta: number, dim: number, factor: number, low: number, high: number, oldLen: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < dim; i += 2) {
      const f = 1 / theta ** (i / dim);
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < oldLen / high) out.push(f);
      else if (wavelen > oldLen / low) out.push(f / factor);
      else {
        const s = (oldLen / wavelen - low) / (high - low);
        out.push((1 - s) * (f / factor) + s * f);
      }
    }
    return out;
  }

  it('matches the llama3 formula for llama3-rand (head_dim 8, factor 32)', () => {
    const cfg = load('llama3-rand');
    const got = ropeInvFreq(cfg);
    const want = llama3Reference(500000, 8, 32, 1, 4, 8192);
    expect(got).toHaveLength(4);
    for (let i = 0; i < 4; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(1e-6);
    // head_dim 8: wavelengths 2*pi*500000^(i/8) = 6.3, 169, 4443, 1.2e5: kept, kept, smoothed, divided.
    expect(got[0]).toBe(1);
    expect(got[3]).toBeCloseTo(1 / 500000 ** 0.75 / 32, 12);
    const plain = 1 / 500000 ** 0.5;
    expect(got[2]).toBeLessThan(plain);
    expect(got[2]).toBeGreaterThan(plain / 32);
  });

  it('matches the llama3 formula at Llama-3.2-1B size (head_dim 64)', () => {
    const cfg = parseModelConfig(readFileSync(join(BENCH, 'llama-3.2-1b', 'config.json'), 'utf8'));
    const got = ropeInvFreq(cfg);
    const want = llama3Reference(500000, 64, 32, 1, 4, 8192);
    for (let i = 0; i < 32; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(1e-6);
  });

  it('gives theta^(-2i/d) for plain rope and divides by the factor for linear', () => {
    const base = { ...readJson(join(modelDir('stories260K'), 'config.json')) };
    const plain = ropeInvFreq(parseModelConfig(base));
    expect([...plain]).toEqual([0, 2, 4, 6].map((i) => Math.fround(1 / Math.fround(10000 ** Math.fround(i / 8)))));
    const linear = ropeInvFreq(parseModelConfig({ ...base, rope_scaling: { type: 'linear', factor: 4 } }));
    for (let i = 0; i < 4; i++) expect(linear[i]).toBeCloseTo(plain[i] / 4, 9);
    // dynamic NTK equals plain rope up to the trained length, and lowers frequencies beyond it.
    const dyn = parseModelConfig({ ...base, rope_scaling: { rope_type: 'dynamic', factor: 2 } });
    expect(ropeInvFreq(dyn)).toEqual(plain);
    expect(ropeInvFreq(dyn, 2048)[3]).toBeLessThan(plain[3]);
  });

  it('handles yarn (Qwen2.5 style) with its attention factor', () => {
    const base = readJson(join(modelDir('qwen3-rand'), 'config.json'));
    const cfg = parseModelConfig({
      ...base,
      rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4, original_max_position_embeddings: 32768 },
    });
    expect(ropeAttentionScaling(cfg)).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    const inv = ropeInvFreq(cfg);
    const plain = ropeInvFreq(load('qwen3-rand'));
    expect(inv[0]).toBe(plain[0]); // fastest dims extrapolate (unchanged)
    expect(inv[31]).toBeCloseTo(plain[31] / 4, 12); // slowest dims interpolate (/ factor)
  });

  it('handles Phi-3 longrope: short factors by default, long beyond the original context', () => {
    const base = readJson(join(modelDir('phi3-rand'), 'config.json'));
    const short = Array.from({ length: 8 }, (_, i) => 1 + i / 10);
    const long = Array.from({ length: 8 }, (_, i) => 2 + i);
    const { rope_parameters: _, ...rest } = base;
    const cfg = parseModelConfig({
      ...rest,
      max_position_embeddings: 131072,
      original_max_position_embeddings: 4096,
      rope_theta: 10000,
      rope_scaling: { type: 'su', short_factor: short, long_factor: long },
    });
    expect(cfg.rope?.scaling?.type).toBe('longrope');
    expect(ropeAttentionScaling(cfg)).toBeCloseTo(Math.sqrt(1 + Math.log(32) / Math.log(4096)), 12);
    const plain = ropeInvFreq(load('phi3-rand'));
    const s = ropeInvFreq(cfg);
    const l = ropeInvFreq(cfg, 5000);
    for (let i = 0; i < 8; i++) {
      // float32 results against float64 references: relative error within a few ulp.
      expect(Math.abs(s[i] - plain[i] / short[i]) / s[i]).toBeLessThan(3e-7);
      expect(Math.abs(l[i] - plain[i] / long[i]) / l[i]).toBeLessThan(3e-7);
    }
  });

  it('supports partial rotary (Phi-3.5 style partial_rotary_factor)', () => {
    const base = readJson(join(modelDir('phi3-rand'), 'config.json'));
    const cfg = parseModelConfig({ ...base, rope_parameters: { ...base.rope_parameters, partial_rotary_factor: 0.75 } });
    expect(cfg.rope?.rotaryDim).toBe(12);
    expect(ropeInvFreq(cfg)).toHaveLength(6);
  });
});

describe('malformed config.json', () => {
  const good = () => readJson(join(modelDir('llama3-rand'), 'config.json'));

  it('rejects text that is not JSON', () => {
    expectFileError(() => parseModelConfig('{"hidden_size": 16,', 'x/config.json'), 'x/config.json', /not valid JSON/);
    expectFileError(() => parseModelConfig('[1, 2]'), 'config.json', /JSON object/);
  });
  it('rejects unsupported architectures, naming them', () => {
    expectFileError(() => parseModelConfig({ ...good(), architectures: ['BertModel'] }), 'config.json', /"architectures"/, /BertModel/, /not supported|none of which/);
    const { architectures: _, ...noArch } = good();
    expectFileError(() => parseModelConfig({ ...noArch, model_type: 'gemma' }), 'config.json', /"model_type"/, /gemma/);
    expect(parseModelConfig(noArch).architecture).toBe('LlamaForCausalLM');
  });
  it('names a missing required key', () => {
    const { hidden_size: _, ...cfg } = good();
    expectFileError(() => parseModelConfig(cfg), 'config.json', /"hidden_size" is required but missing/);
    const { n_embd: __, ...gpt2 } = readJson(join(modelDir('gpt2-rand'), 'config.json'));
    expectFileError(() => parseModelConfig(gpt2), 'config.json', /"n_embd" is required/);
  });
  it('names keys of the wrong type', () => {
    expectFileError(() => parseModelConfig({ ...good(), num_attention_heads: '4' }), 'config.json', /"num_attention_heads" must be a positive integer, got "4"/);
    expectFileError(() => parseModelConfig({ ...good(), num_hidden_layers: 2.5 }), 'config.json', /"num_hidden_layers"/);
    expectFileError(() => parseModelConfig({ ...good(), tie_word_embeddings: 'yes' }), 'config.json', /"tie_word_embeddings" must be true or false/);
    expectFileError(() => parseModelConfig({ ...good(), eos_token_id: [1, 'x'] }), 'config.json', /"eos_token_id"/);
    expectFileError(() => parseModelConfig({ ...good(), torch_dtype: 'int4' }), 'config.json', /"torch_dtype" .*int4/);
    expectFileError(() => parseModelConfig({ ...good(), hidden_act: 'swiglu2' }), 'config.json', /"hidden_act" .*swiglu2/);
  });
  it('rejects inconsistent head counts', () => {
    expectFileError(() => parseModelConfig({ ...good(), num_key_value_heads: 3 }), 'config.json', /"num_key_value_heads" \(3\) must divide/);
    const { head_dim: _, ...noHeadDim } = good();
    expectFileError(() => parseModelConfig({ ...noHeadDim, num_attention_heads: 5, num_key_value_heads: 5 }), 'config.json', /"hidden_size" \(16\) must be divisible/);
  });
  it('rejects bad rope settings, naming the nested key', () => {
    expectFileError(() => parseModelConfig({ ...good(), rope_scaling: { rope_type: 'mrope', factor: 2 } }), 'config.json', /"rope_scaling.rope_type" names rope type "mrope"/);
    expectFileError(() => parseModelConfig({ ...good(), rope_scaling: { rope_type: 'llama3', factor: 8 } }), 'config.json', /"rope_scaling.low_freq_factor" is required/);
    expectFileError(() => parseModelConfig({ ...good(), rope_scaling: 'llama3' }), 'config.json', /"rope_scaling" must be an object/);
    expectFileError(() => parseModelConfig({ ...good(), rope_theta: -1 }), 'config.json', /"rope_theta" must be positive/);
  });
  it('rejects features it would otherwise silently get wrong', () => {
    const qwen = readJson(join(modelDir('qwen2-rand'), 'config.json'));
    expectFileError(() => parseModelConfig({ ...qwen, use_sliding_window: true, sliding_window: 4096 }), 'config.json', /"use_sliding_window"/);
    const opt = readJson(join(modelDir('opt-rand'), 'config.json'));
    expectFileError(() => parseModelConfig({ ...opt, layer_norm_elementwise_affine: false }), 'config.json', /layer_norm_elementwise_affine/);
  });
  it('applies MistralConfig\'s 4096 window when sliding_window is absent, none when null', () => {
    const { sliding_window: _, ...mistral } = readJson(join(modelDir('mistral-rand'), 'config.json'));
    expect(parseModelConfig(mistral).slidingWindow).toBe(4096);
    expect(parseModelConfig({ ...mistral, sliding_window: null }).slidingWindow).toBeNull();
  });
  it('reads OPT post-LN and embedding projection (opt-350m shape)', () => {
    const opt = readJson(join(modelDir('opt-rand'), 'config.json'));
    const cfg = parseModelConfig({ ...opt, do_layer_norm_before: false, word_embed_proj_dim: 16 });
    expect(cfg).toMatchObject({ preNorm: false, finalNorm: false, wordEmbedProjDim: 16 });
  });
});

describe('parseGenerationConfig', () => {
  const folders = modelFolders.filter((d) => existsSync(join(MODELS, d, 'generation_config.json')));
  it.each(folders)('%s parses', (name) => {
    const text = readFileSync(join(modelDir(name), 'generation_config.json'), 'utf8');
    const gen = parseGenerationConfig(text);
    expect(gen.eosTokenIds.length).toBeGreaterThan(0);
    expect(gen.raw).toEqual(JSON.parse(text));
  });

  const gen = (name: string) => parseGenerationConfig(readFileSync(join(modelDir(name), 'generation_config.json'), 'utf8'));
  it('reads EOS lists and sampling defaults', () => {
    expect(gen('llama3-rand')).toMatchObject({ eosTokenIds: [128001, 128008, 128009], bosTokenId: 128000, temperature: 0.6, topP: 0.9 });
    expect(gen('qwen2-rand')).toMatchObject({ eosTokenIds: [151645, 151643], temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05 });
    expect(gen('qwen3-rand')).toMatchObject({ temperature: 0.6, topK: 20, topP: 0.95 });
    expect(gen('phi3-rand').eosTokenIds).toEqual([32000, 32001, 32007]);
    const stories = gen('stories260K');
    expect(stories).toMatchObject({ eosTokenIds: [2], bosTokenId: 1 });
    expect(stories.temperature).toBeUndefined();
    expect(gen('gpt2-rand').eosTokenIds).toEqual([0]);
  });
  it('rejects malformed files naming the key', () => {
    const f = 'generation_config.json';
    expectFileError(() => parseGenerationConfig('nope'), f, /not valid JSON/);
    expectFileError(() => parseGenerationConfig({ eos_token_id: 'x' }), f, /"eos_token_id"/);
    expectFileError(() => parseGenerationConfig({ temperature: -1 }), f, /"temperature" must be >= 0/);
    expectFileError(() => parseGenerationConfig({ top_p: 1.5 }), f, /"top_p" must be in \(0, 1\]/);
    expectFileError(() => parseGenerationConfig({ top_k: 2.5 }), f, /"top_k"/);
    expectFileError(() => parseGenerationConfig({ max_new_tokens: 0 }), f, /"max_new_tokens"/);
    expect(parseGenerationConfig({}).eosTokenIds).toEqual([]);
  });
});
