/** Test-only: a node:fs ModelSource and per-file caches of parsed tokenizers (the big ones take ~0.3 s each). */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSource, ModelSource } from '../../src/platform';
import { Tokenizer } from '../../src/tokenizer';
import { modelDir } from './paths';

export function fsSource(dir: string): ModelSource {
  return {
    name: dir,
    exists: async (file) => existsSync(join(dir, file)),
    readText: (file) => readFile(join(dir, file), 'utf8'),
    open: async (file): Promise<ByteSource> => {
      const bytes = readFileSync(join(dir, file));
      return {
        name: join(dir, file),
        size: bytes.length,
        read: async (offset, length) => bytes.subarray(offset, offset + length),
      };
    },
  };
}

/** An in-memory source: file name -> text. */
export function memorySource(name: string, files: Record<string, string>): ModelSource {
  return {
    name,
    exists: async (file) => file in files,
    readText: async (file) => {
      if (!(file in files)) throw new Error(`no such file: ${file}`);
      return files[file];
    },
    open: async () => {
      throw new Error('not needed by the tokenizer');
    },
  };
}

const loaded = new Map<string, Promise<Tokenizer>>();

/** The tokenizer of a shared test model folder, loaded once per test file. */
export function loadTokenizer(model: string): Promise<Tokenizer> {
  let t = loaded.get(model);
  if (!t) {
    t = Tokenizer.fromSource(fsSource(modelDir(model)));
    loaded.set(model, t);
  }
  return t;
}

/** The model folders that have a tokenizer.json. */
export const TOKENIZER_MODELS = [
  'stories260K',
  'tinystories-656K',
  'tinystories-656K-bf16',
  'tiny-random-gpt2',
  'tiny-random-llama2',
  'llama3-rand',
  'qwen2-rand',
  'qwen3-rand',
  'mistral-rand',
  'phi3-rand',
  'opt-rand',
  'gpt2-rand',
] as const;
