/** The GPU runner's sizing: how many tokens per step, sequences per step and KV blocks fit the device. */
import type { ModelConfig } from '../config/model-config.js';
import type { RunnerLimits } from '../engine/executor.js';
import type { EngineOptions } from '../engine/llm-engine.js';
import { InvalidArgumentError } from '../errors.js';
import type { GpuContext } from '../gpu/context.js';

const MiB = 1 << 20;

export function runnerLimits(ctx: GpuContext, cfg: ModelConfig, o: EngineOptions, weightDtype: 'f32' | 'f16'): RunnerLimits {
  const maxBinding = ctx.device.limits.maxStorageBufferBindingSize;
  const maxModelLen = o.maxModelLen ?? Math.min(cfg.maxModelLen, 8192);
  if (!Number.isInteger(maxModelLen) || maxModelLen < 2) throw new InvalidArgumentError('maxModelLen', `maxModelLen must be an integer >= 2, got ${maxModelLen}`);
  if (maxModelLen > cfg.maxModelLen && cfg.positions === 'learned') {
    throw new InvalidArgumentError('maxModelLen', `maxModelLen ${maxModelLen} exceeds the model's ${cfg.maxModelLen} learned positions`);
  }
  const blockSize = o.blockSize ?? 16;
  const maxNumSeqs = o.maxNumSeqs ?? 64;
  // The widest activation row decides how many tokens one storage binding holds.
  const widest = Math.max(
    cfg.hiddenSize,
    (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim,
    cfg.gatedMlp ? 2 * cfg.intermediateSize : cfg.intermediateSize,
    cfg.moe ? Math.max(cfg.moe.numExperts, cfg.moe.sharedIntermediateSize ?? 0) : 0,
  );
  const bindingTokens = Math.floor(maxBinding / (widest * 4));
  const maxNumBatchedTokens = Math.min(o.maxNumBatchedTokens ?? 2048, bindingTokens);
  if (maxNumBatchedTokens < 1) throw new InvalidArgumentError('maxNumBatchedTokens', 'maxNumBatchedTokens must be at least 1');
  const kvDtype = o.kvCacheDtype === 'float32' ? 'f32' : o.kvCacheDtype === 'float16' ? 'f16' : weightDtype;
  if (kvDtype === 'f16' && !ctx.f16) throw new InvalidArgumentError('kvCacheDtype', 'kvCacheDtype float16 needs the shader-f16 feature');
  const blockBytesPerLayer = blockSize * cfg.numKvHeads * cfg.headDim * (kvDtype === 'f16' ? 2 : 4);
  const byBudget = Math.floor((o.kvCacheMemoryBytes ?? 256 * MiB) / (2 * cfg.numLayers * blockBytesPerLayer));
  const byBinding = Math.floor(maxBinding / blockBytesPerLayer);
  const numBlocks = o.numGpuBlocksOverride ?? Math.min(byBudget, byBinding);
  if (!Number.isInteger(numBlocks) || numBlocks < 1) {
    throw new InvalidArgumentError('kvCacheMemoryBytes', `the KV cache budget holds no block of ${blockSize} tokens; raise kvCacheMemoryBytes`);
  }
  if (numBlocks > byBinding) throw new InvalidArgumentError('numGpuBlocksOverride', `at most ${byBinding} blocks fit one storage binding per layer`);
  // As vLLM: one sequence of maxModelLen tokens must fit the cache. A default length shrinks to fit.
  const capacity = numBlocks * blockSize;
  if (maxModelLen > capacity && o.maxModelLen !== undefined) {
    throw new InvalidArgumentError('maxModelLen', `maxModelLen ${maxModelLen} is more than the KV cache holds (${capacity} tokens in ${numBlocks} blocks); raise kvCacheMemoryBytes or lower maxModelLen`);
  }
  return { maxNumBatchedTokens, maxNumSeqs, maxModelLen: Math.min(maxModelLen, capacity), blockSize, numBlocks, kvDtype };
}
