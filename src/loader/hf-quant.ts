/**
 * Hugging Face quantized checkpoints (config.json `quantization_config`: AWQ, GPTQ, compressed-tensors) as a
 * WeightsReader of block-format tensors. Not implemented yet: such a checkpoint is refused with a clear error.
 */
import { ModelFileError } from '../errors.js';
import type { WeightsReader } from './checkpoint.js';

/** Whether config.json declares a quantized checkpoint. */
export function hasQuantizationConfig(config: Record<string, unknown>): boolean {
  return config.quantization_config !== undefined && config.quantization_config !== null;
}

/** The checkpoint's quantized modules repacked into block formats (see the file comment). */
export function quantizedCheckpointReader(inner: WeightsReader, quantConfig: unknown, where: string): WeightsReader {
  const method = (quantConfig as { quant_method?: unknown } | null)?.quant_method;
  void inner;
  throw new ModelFileError(where, `quantization_config.quant_method ${JSON.stringify(method)} is not supported yet`);
}
