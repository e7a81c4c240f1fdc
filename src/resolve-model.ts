/**
 * From what a user names as `model` to what the engine loads (EngineModel: config, tokenizer, generation config,
 * checkpoint reader), as vLLM's model / tokenizer arguments and llama.cpp's `-hf org/name:QUANT` work:
 *
 *   '/models/qwen'                        a Hugging Face folder (config.json, safetensors, tokenizer.json)
 *   'Qwen/Qwen2.5-0.5B-Instruct'          the same on the hub (or a URL prefix)
 *   '/models/x-Q4_K_M.gguf', 'https://host/x-Q4_K_M.gguf'
 *                                         one GGUF file (its splits `-00001-of-0000N.gguf` are found beside it)
 *   'org/name:Q4_K_M'                     the GGUF file of that quant type in a hub repo (or a local folder)
 *   'org/name' + ggufFile                 a named GGUF file in a repo or folder
 *   a folder or repo with GGUF files and no config.json: its only GGUF model, else the Q4_K_M one
 *
 * A GGUF model brings its config, tokenizer and chat template in its metadata; `tokenizer` (a folder, URL or repo
 * id) uses that Hugging Face tokenizer instead, as vLLM recommends for GGUF. A checkpoint with a
 * `quantization_config` (AWQ, GPTQ, compressed-tensors) is read through loader/hf-quant.ts.
 */
import { parseGenerationConfig, type GenerationConfig } from './config/generation-config.js';
import type { EngineModel } from './engine/llm-engine.js';
import { InvalidArgumentError, ModelFileError } from './errors.js';
import { safetensorsReader } from './loader/checkpoint.js';
import { hasQuantizationConfig, quantizedCheckpointReader } from './loader/hf-quant.js';
import { openGgufModel } from './models/gguf-config.js';
import { parseModelConfig } from './models/registry.js';
import type { ModelSource, OpenModelOptions, Platform } from './platform.js';
import { ggufTokenizer } from './tokenizer/gguf.js';
import { Tokenizer } from './tokenizer/index.js';

export interface ModelOptions extends OpenModelOptions {
  /** A folder, URL, hub repo id, GGUF file or `org/name:QUANT`; omitted: the embedded default model. */
  model?: string;
  /** The GGUF file to load from the `model` folder or repo (llama.cpp's --hf-file), e.g. 'x-Q4_K_M.gguf'. */
  ggufFile?: string;
  /** vLLM's `tokenizer`: a folder, URL or repo id whose Hugging Face tokenizer (and chat template) to use. */
  tokenizer?: string;
}

const GGUF = /\.gguf$/i;
/** `org/name:TAG`: a hub repo and a quant type. */
const REPO_TAG = /^([\w.-]+\/[\w.-]+):([\w.-]+)$/;
/** Files of a GGUF model that hold no language model weights (vision projectors). */
const NOT_MODEL = /(^|\/)mmproj/i;
/** The GGUF picked from a folder or repo of several when no quant type is named (llama.cpp's default). */
const DEFAULT_TAG = 'Q4_K_M';

/**
 * Finds the model the options name and reads its config and tokenizer (the weights are read when loaded).
 *
 * @example
 *   const model = await resolveModel(platform, { model: 'bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M' });
 *   model.config.numLayers; // 16
 */
export async function resolveModel(platform: Platform, opts: ModelOptions): Promise<EngineModel> {
  const m = opts.model;
  const tagged = m === undefined ? null : REPO_TAG.exec(m);
  let source: ModelSource;
  let ggufFile = opts.ggufFile;
  if (ggufFile !== undefined && (typeof ggufFile !== 'string' || !GGUF.test(ggufFile))) {
    throw new InvalidArgumentError('ggufFile', `must name a .gguf file, got ${JSON.stringify(ggufFile)}`);
  }
  if (tagged) {
    if (ggufFile) throw new InvalidArgumentError('ggufFile', `give either a quant type in model (${m}) or ggufFile, not both`);
    source = await platform.openModel(tagged[1], opts);
    ggufFile = await pickGguf(source, tagged[2]);
  } else if (m !== undefined && GGUF.test(m)) {
    if (ggufFile) throw new InvalidArgumentError('ggufFile', `model already names a GGUF file (${m})`);
    const cut = m.lastIndexOf('/');
    source = await platform.openModel(cut < 0 ? '.' : cut === 0 ? '/' : m.slice(0, cut), opts);
    ggufFile = m.slice(cut + 1);
  } else {
    source = await platform.openModel(m, opts);
    if (!ggufFile && !(await source.exists('config.json')) && source.list) {
      const ggufs = (await source.list()).filter((f) => GGUF.test(f) && !NOT_MODEL.test(f));
      if (ggufs.length > 0) ggufFile = await pickGguf(source, null, ggufs);
    }
  }
  const tokenizerSource = opts.tokenizer !== undefined ? await platform.openModel(opts.tokenizer, opts) : null;
  if (ggufFile) {
    const gguf = await openGgufModel(source, ggufFile);
    const name = `${source.name.replace(/\/+$/, '')}/${ggufFile}`;
    return {
      name,
      config: gguf.config,
      tokenizer: tokenizerSource ? await Tokenizer.fromSource(tokenizerSource) : await ggufTokenizer(gguf.metadata, name),
      generationConfig: tokenizerSource ? await readGenerationConfig(tokenizerSource) : null,
      openWeights: async () => gguf.weights,
    };
  }
  const configName = `${source.name}/config.json`;
  const configText = await source.readText('config.json');
  const config = parseModelConfig(configText, configName);
  const quantConfig = hasQuantizationConfig(JSON.parse(configText) as Record<string, unknown>) ? (JSON.parse(configText) as Record<string, unknown>).quantization_config : null;
  return {
    name: source.name,
    config,
    tokenizer: await Tokenizer.fromSource(tokenizerSource ?? source),
    generationConfig: await readGenerationConfig(source),
    openWeights: async () => {
      const weights = await safetensorsReader(source);
      return quantConfig === null ? weights : quantizedCheckpointReader(weights, quantConfig, configName);
    },
  };
}

async function readGenerationConfig(source: ModelSource): Promise<GenerationConfig | null> {
  if (!(await source.exists('generation_config.json'))) return null;
  return parseGenerationConfig(await source.readText('generation_config.json'), `${source.name}/generation_config.json`);
}

/**
 * The GGUF file of quant type `tag` (case-insensitive: `x-Q4_K_M.gguf`, `x.Q4_K_M.gguf`, the first of
 * `x-Q4_K_M-00001-of-00002.gguf`, or a file in a folder named after it), or with no tag the only model, else the
 * Q4_K_M one. Throws listing what there is.
 */
async function pickGguf(source: ModelSource, tag: string | null, listed?: string[]): Promise<string> {
  if (!source.list) throw new InvalidArgumentError('model', `${source.name} cannot list its files: name the GGUF file (ggufFile, or a path or URL ending in .gguf)`);
  const files = listed ?? (await source.list()).filter((f) => GGUF.test(f) && !NOT_MODEL.test(f));
  // Each model once: an unsplit file, or the first of its splits.
  const models = files.filter((f) => !/-\d{5}-of-\d{5}\.gguf$/i.test(f) || /-00001-of-\d{5}\.gguf$/i.test(f)).sort();
  if (models.length === 0) throw new ModelFileError(source.name, 'has no GGUF files');
  const want = (tag ?? DEFAULT_TAG).toLowerCase();
  const matches = models.filter((f) => {
    const lower = f.toLowerCase();
    const stem = lower.replace(/(-\d{5}-of-\d{5})?\.gguf$/, '');
    return stem.endsWith(`-${want}`) || stem.endsWith(`.${want}`) || stem.endsWith(`_${want}`) || lower.split('/').slice(0, -1).includes(want);
  });
  if (matches.length === 1) return matches[0];
  if (tag === null && models.length === 1) return models[0];
  const list = models.slice(0, 20).join(', ') + (models.length > 20 ? `, and ${models.length - 20} more` : '');
  if (matches.length > 1) throw new InvalidArgumentError('model', `${source.name} has several GGUF files of type ${tag ?? DEFAULT_TAG} (${matches.join(', ')}): name one with ggufFile`);
  throw new InvalidArgumentError('model', `${source.name} has no GGUF file of type ${tag ?? DEFAULT_TAG}${tag === null ? ' (the default when several are present)' : ''}; it has: ${list}`);
}
