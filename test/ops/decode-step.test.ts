/**
 * The dispatches of a batch-1 decode step (Decoder.forward + logits for one token), which is bound by their number
 * on GPUs (README, performance): a Llama layer is the qkv projection with rope and the KV-cache write in its
 * epilogue, attention (and the combine of its split-K pieces where the tuning splits keys: GPUs), o, gate/up, down;
 * the step adds the embedding and the LM head (the sampled row is read in place, no gather). For dense and
 * block-quantized weights: 5 L + 2 dispatches on CPU drivers, 6 L + 2 on GPUs, where the unfused step had 7 L + 3.
 */
import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { CPU_TUNING, GPU_TUNING } from '../../src/gpu/tuning.js';
import { denseMethod } from '../../src/layers/linear.js';
import { modelQuantMethods } from '../../src/layers/quant/index.js';
import { Decoder, type Activations, type ForwardInputs, type KVCache } from '../../src/models/decoder.js';
import { loadWeights } from '../../src/models/load-weights.js';
import { parseModelConfig } from '../../src/models/registry.js';
import { getTestGpu } from '../helpers/gpu.js';
import { i32, u32, withTuning } from './util.js';

const cfg = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
  vocab_size: 256,
  max_position_embeddings: 512,
});

describe('a batch-1 decode step of a Llama model', async () => {
  const ctx = await getTestGpu();
  const { hiddenSize: H, numLayers: L, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const blockSize = 16;
  const maxBlocksPerSeq = 32; // 512 keys: the GPU tuning splits them (flash decoding)
  const cache: KVCache = {
    numBlocks: maxBlocksPerSeq,
    blockSize,
    k: Array.from({ length: L }, () => createTensor(ctx, [maxBlocksPerSeq, blockSize, nKv, D], 'f16')),
    v: Array.from({ length: L }, () => createTensor(ctx, [maxBlocksPerSeq, blockSize, nKv, D], 'f16')),
  };
  const acts: Activations = {
    x: createTensor(ctx, [1, H], 'f32'),
    h: createTensor(ctx, [1, H], 'f32'),
    qkv: createTensor(ctx, [1, (nH + 2 * nKv) * D], 'f32'),
    attn: createTensor(ctx, [1, nH * D], 'f32'),
    up: createTensor(ctx, [1, 2 * I], 'f32'),
    act: createTensor(ctx, [1, I], 'f32'),
    xs: createTensor(ctx, [1, H], 'f32'),
    xsNorm: createTensor(ctx, [1, H], 'f32'),
    logits: createTensor(ctx, [1, V], 'f32'),
  };
  const pos = 300;
  const inputs: ForwardInputs = {
    T: 1,
    ids: u32(ctx, [7]),
    positions: u32(ctx, [pos]),
    positionIds: null,
    seqIdx: u32(ctx, [0]),
    slotMapping: i32(ctx, [pos]),
    blockTables: u32(ctx, Array.from({ length: maxBlocksPerSeq }, (_, b) => b)),
    maxBlocksPerSeq,
  };

  for (const weights of ['f16', 'q4_0'] as const) {
    for (const [tname, tuning, split] of [
      ['CPU tuning (keys in one piece)', CPU_TUNING, false],
      ['GPU tuning (keys split, merged by a dispatch)', GPU_TUNING, true],
    ] as const) {
      const perLayer = split ? 6 : 5;
      it(`${weights}, ${tname}: ${perLayer} dispatches a layer, 2 more for the step`, async () => {
        const dense = denseMethod('f16');
        const method = weights === 'f16' ? dense : modelQuantMethods('q4_0', dense);
        const w = await loadWeights(ctx, { name: 'dummy', openWeights: () => Promise.reject(new Error('dummy weights')) }, cfg, { method, dummy: true });
        await withTuning(ctx, tuning, async () => {
          const model = new Decoder(ctx, cfg, w);
          const rec = new Recorder(ctx, 'decode');
          const graph = rec.capture(() => {
            model.forward(rec, inputs, acts, cache);
            model.logits(rec, null, 1, acts);
          });
          rec.submit();
          await ctx.finish();
          expect(ctx.takeErrors()).toEqual([]);
          const names = graph.commands.flatMap((c) => (c.kind === 'dispatch' ? [c.name] : []));
          expect(names.length).toBe(perLayer * L + 2);
          expect(rec.dispatches).toBe(names.length);
          // Per layer: qkv (+ rope + cache), attention (+ combine), o, gate/up, down.
          const layer = names.slice(1, 1 + perLayer);
          expect(layer[0]).toMatch(/gemv.*\.n\.rope\.f16$/);
          expect(layer[1]).toMatch(/^paged_attention\./);
          if (split) expect(layer[2]).toBe('paged_attention.combine');
          expect(layer[perLayer - 3]).toMatch(/gemv.*\.r$/);
          expect(layer.slice(-2).every((n) => /gemv/.test(n))).toBe(true);
          expect(names[0]).toMatch(/embed/);
          expect(names[names.length - 1]).toMatch(/gemv/); // the LM head, normalising x in place
        });
      });
    }
  }
});
