/**
 * --gpu-memory-utilization F: vLLM gives the instance F x the GPU's memory and the KV cache what weights and
 * activations leave. WebGPU reports no memory size, so the total comes from nvidia-smi where there is one, else
 * the system's memory (integrated GPUs and CPU adapters such as lavapipe share it); the weights are estimated from
 * config.json (parameter count x bytes a weight for the dtype or quantization) before they load.
 *
 *   kvCacheMemoryBytes = F x total - weights - activations - 64 MiB slack
 */
import { execFileSync } from 'node:child_process';
import { totalmem } from 'node:os';
import type { ModelConfig } from '../../../src/config/model-config.js';
import { blockFormat } from '../../../src/layers/quant/index.js';
import { resolveModel } from '../../../src/resolve-model.js';
import { nodePlatform, type LLMOptions } from '../index.js';
import { UsageError } from './args.js';

const MiB = 2 ** 20;

/** The GPU's memory in bytes and where the number came from. */
export function deviceMemory(): { bytes: number; source: string } {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    const mib = Number(out.trim().split('\n')[0]);
    if (Number.isFinite(mib) && mib > 0) return { bytes: mib * MiB, source: 'nvidia-smi' };
  } catch {
    // No NVIDIA driver: fall through to system memory.
  }
  return { bytes: totalmem(), source: 'system memory' };
}

/** Bytes one weight of a projection matrix takes for this dtype / quantization. */
function bytesPerWeight(cfg: ModelConfig, o: LLMOptions): number {
  if (o.quantization) {
    const f = blockFormat(o.quantization.replace(/_m$/, '')); // a mix: its main format (down is a little larger)
    return f.blockBytes / f.blockElems;
  }
  if (o.dtype === 'float32') return 4;
  return o.dtype === 'float16' || cfg.dtype !== 'float32' ? 2 : 4;
}

/** Weight bytes on the GPU, from the config's shapes (embeddings and LM head stay dense). */
export function estimateWeightBytes(cfg: ModelConfig, o: LLMOptions): number {
  const H = cfg.hiddenSize;
  const attn = H * (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim + cfg.numHeads * cfg.headDim * H;
  const mlpOne = (cfg.gatedMlp ? 3 : 2) * H * cfg.intermediateSize;
  const moe = cfg.moe;
  const mlp = moe ? moe.numExperts * (cfg.gatedMlp ? 3 : 2) * H * moe.intermediateSize + (moe.sharedIntermediateSize ?? 0) * 3 * H : mlpOne;
  const dense = o.dtype === 'float32' || cfg.dtype === 'float32' ? 4 : 2;
  const embed = cfg.vocabSize * H * dense * (cfg.tieWordEmbeddings ? 1 : 2);
  // MoE experts stay dense (the fused MoE kernels read f32 / f16).
  const perLayer = attn * bytesPerWeight(cfg, o) + (moe ? mlp * dense : mlp * bytesPerWeight(cfg, o));
  return Math.round(embed + cfg.numLayers * perLayer);
}

/** Activation buffers of one step at the largest token count, and the logits rows. */
export function estimateActivationBytes(cfg: ModelConfig, o: LLMOptions): number {
  const maxT = o.maxNumBatchedTokens ?? 2048;
  const qkv = (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim;
  const perToken = 3 * cfg.hiddenSize + qkv + cfg.numHeads * cfg.headDim + 3 * cfg.intermediateSize;
  const rows = Math.max(o.maxNumSeqs ?? 64, 64);
  return 4 * (maxT * perToken + rows * cfg.vocabSize);
}

/**
 * The KV cache bytes for `fraction` of the device's memory, for the model `o` names (its config is read, nothing
 * else); throws a UsageError when the weights alone take more.
 */
export async function kvCacheBytesForUtilization(fraction: number, o: LLMOptions): Promise<{ bytes: number; note: string }> {
  const model = await resolveModel(nodePlatform, o);
  const cfg = model.config;
  const total = deviceMemory();
  const weights = estimateWeightBytes(cfg, o);
  const acts = estimateActivationBytes(cfg, o);
  const bytes = Math.floor(fraction * total.bytes - weights - acts - 64 * MiB);
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const note = `--gpu-memory-utilization ${fraction}: ${gib(fraction * total.bytes)} of ${gib(total.bytes)} (${total.source}); weights ~${gib(weights)}, activations ~${gib(acts)}, KV cache ${gib(Math.max(bytes, 0))}`;
  if (bytes < 16 * MiB) throw new UsageError(`${note}: no room left for the KV cache; raise --gpu-memory-utilization or give --kv-cache-memory`);
  return { bytes, note };
}
