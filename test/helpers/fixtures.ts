/**
 * The fixture checkpoints of test/fixtures (made by test/fixtures/make_fixtures.py with Hugging Face transformers):
 * tiny random models of architectures beyond the shared ones, stored without tokenizer files, and their goldens.
 */
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODELS, REPO, type GoldenPrompt } from './paths.js';

/** test/fixtures: make_fixtures.py, goldens.json and models/<name>/. */
export const FIXTURES = join(REPO, 'test/fixtures');

export interface FixtureGolden {
  /** The folder under ../shared/models whose tokenizer the fixture uses (its own folder has none). */
  tokenizer_from: string;
  /** The HF class the checkpoint's config names, e.g. `Gemma2ForCausalLM`. */
  architecture: string;
  prompts: GoldenPrompt[];
}

let goldens: Record<string, FixtureGolden> | undefined;
/** test/fixtures/goldens.json, keyed by fixture folder name. */
export function loadFixtureGoldens(): Record<string, FixtureGolden> {
  goldens ??= JSON.parse(readFileSync(join(FIXTURES, 'goldens.json'), 'utf8'));
  return goldens!;
}

export const fixtureDir = (name: string) => join(FIXTURES, 'models', name);

/** Tokenizer files taken from the `tokenizer_from` folder (the fixture keeps its own config and weights). */
const isTokenizerFile = (f: string) => f.startsWith('tokenizer') || f === 'special_tokens_map.json';

/** A model folder assembled from symlinks in a temporary directory; `dispose` removes the directory. */
export interface AssembledModel {
  dir: string;
  dispose(): Promise<void>;
}

/**
 * Assembles a loadable model folder for fixture `name`: links to its config, weights and generation config, plus the
 * tokenizer files of its `tokenizer_from` folder under ../shared/models. `config` picks which of the fixture's
 * configs is linked as config.json (`config.v4.json`: the transformers 4.x form of the same model).
 *
 * @example
 *   const m = await assembleFixture('phi4mini-rand');
 *   const llm = await loadLLM(m.dir);
 *   ...
 *   await m.dispose();
 */
export async function assembleFixture(name: string, config: 'config.json' | 'config.v4.json' = 'config.json'): Promise<AssembledModel> {
  const golden = loadFixtureGoldens()[name];
  if (!golden) throw new Error(`no fixture named ${name} in ${join(FIXTURES, 'goldens.json')}`);
  const dir = await mkdtemp(join(tmpdir(), `fixture-${name}-`));
  const src = fixtureDir(name);
  for (const f of await readdir(src)) {
    if (f.startsWith('config')) continue;
    await symlink(join(src, f), join(dir, f));
  }
  await symlink(join(src, config), join(dir, 'config.json'));
  const tokDir = join(MODELS, golden.tokenizer_from);
  for (const f of (await readdir(tokDir)).filter(isTokenizerFile)) await symlink(join(tokDir, f), join(dir, f));
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** The fixture's config.json or config.v4.json, parsed. */
export async function readFixtureConfig(name: string, config: 'config.json' | 'config.v4.json' = 'config.json'): Promise<unknown> {
  return JSON.parse(await readFile(join(fixtureDir(name), config), 'utf8'));
}
