/**
 * Loads @mlc-ai/web-xgrammar in Node. The package ships one UMD file in a `"type": "module"` package: Node's ESM
 * loader runs it as an ES module, where its CommonJS branch is skipped and its start-up reads `require` and
 * `__filename`, which ES modules lack. So the file is compiled as what it is, a CommonJS module (the wasm is
 * embedded in it; nothing else is read).
 */
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import type { XGrammarModule } from '../../src/sampling/structured/xgrammar.js';

/** Node's internal CommonJS module API (stable since Node 0.x, used by require hooks such as ts-node). */
interface CjsModule {
  filename: string;
  paths: string[];
  exports: unknown;
  _compile(source: string, filename: string): void;
}

export async function loadXGrammarNode(): Promise<XGrammarModule> {
  const path = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  const M = Module as unknown as { new (id: string): CjsModule; _nodeModulePaths(dir: string): string[] };
  const m = new M(path);
  m.filename = path;
  m.paths = M._nodeModulePaths(path);
  m._compile(readFileSync(path, 'utf8'), path);
  return m.exports as XGrammarModule;
}
