/**
 * Test files that read the shared test checkpoints (../shared/models beside the repository: Hugging Face goldens,
 * random-weight fixtures, GGUF files) are skipped as a whole where that folder is absent (a fresh clone), with one
 * skipped test whose name says why, instead of failing with ENOENT while being collected. vitest.config.ts calls
 * `skipWithoutSharedModels` from its transform hook, so no test file needs a guard of its own, and module-level
 * reads (readdirSync(MODELS), loadGoldens()) never run.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { MODELS } from './paths.js';

/** Names from helpers/paths.ts, and helpers built on them, whose use means the file needs the shared models. */
const NEEDS = /\b(MODELS|modelDir|loadGoldens)\b|helpers\/(fixtures|kquant-model|tokenizer-source)(\.js)?['"]/;

/** True when a test file's source uses the shared models. */
export function needsSharedModels(source: string): boolean {
  return NEEDS.test(source);
}

/** The one-line reason a file is skipped. */
export function skipReason(): string {
  return `needs the shared test models at ${MODELS} (absent; see README "Quick start")`;
}

/**
 * A test file's source, or, where it needs the shared models and they are absent, a module with one skipped test
 * naming the reason (counted as skipped by the reporters and `.ci/run`).
 */
export function skipWithoutSharedModels(path: string, source: string): string | null {
  if (!/\.test\.ts$/.test(path) || existsSync(MODELS) || !needsSharedModels(source)) return null;
  const name = `${basename(path)} ${skipReason()}`;
  process.stderr.write(`skipped: ${name}\n`); // the one line, once per file, as vitest collects it
  return `import { it } from 'vitest';\nit.skip(${JSON.stringify(name)}, () => {});\n`;
}
