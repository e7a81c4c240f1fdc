import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Shared test checkpoints (../shared/models beside the repository; WEBGPU_LLM_TEST_MODELS names another folder). */
export const MODELS = resolve(REPO, process.env.WEBGPU_LLM_TEST_MODELS ?? '../shared/models');
/** The embedded default model. */
export const DEFAULT_MODEL = join(REPO, 'models/tinystories-656K');

export const modelDir = (name: string) => join(MODELS, name);

export interface GoldenPrompt {
  text: string;
  input_ids: number[];
  last_logits_top20: { ids: number[]; values: number[] };
  last_logprobs_top20: number[];
  argmax_per_position: number[];
  greedy_ids: number[];
  greedy_margins: number[];
  greedy_text: string;
}
export interface GoldenModel {
  prompts: GoldenPrompt[];
  beam4: unknown;
  chat?: unknown[];
  chat_tools?: unknown;
}
let goldens: Record<string, GoldenModel> | undefined;
/** goldens.json from Hugging Face transformers, keyed by model folder name. */
export function loadGoldens(): Record<string, GoldenModel> {
  goldens ??= JSON.parse(readFileSync(join(MODELS, 'goldens.json'), 'utf8'));
  return goldens!;
}
