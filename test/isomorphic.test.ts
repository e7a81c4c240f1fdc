/**
 * The core stays isomorphic (STYLE.md, house rule 2): nothing under src/ imports a Node built-in (`node:fs`, `fs`,
 * `path`, ...) or reaches for Node's globals (`process`, `Buffer`, `require`, `__dirname`); Node specifics live in
 * bindings/node. Files are parsed with the TypeScript compiler, so comments and strings do not count, and
 * static, dynamic, `require` and `import x = require()` forms all do. The browser bundle is checked too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]]));
const NODE_GLOBALS = new Set(['process', 'Buffer', 'require', '__dirname', '__filename', 'global', 'module', 'exports']);

/** True for `node:x`, `fs`, `fs/promises`, ... */
function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0]);
}

/** Problems in one file: imports of built-ins and uses of Node's globals, as `line: what`. */
function nodeDependencies(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, fileName.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const found: string[] = [];
  const at = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const declared = new Set<string>();
  const reported = new Set<ts.Node>();
  const visit = (n: ts.Node): void => {
    let spec: ts.Expression | undefined;
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier) spec = n.moduleSpecifier;
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) spec = n.moduleReference.expression;
    else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) spec = n.arguments[0];
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) spec = n.argument.literal;
    if (spec && ts.isStringLiteralLike(spec) && isNodeBuiltin(spec.text)) {
      found.push(`${at(n)}: imports '${spec.text}'`);
      if (ts.isCallExpression(n)) reported.add(n.expression); // require('fs'): one finding, not two
    }

    if ((ts.isVariableDeclaration(n) || ts.isParameter(n) || ts.isFunctionDeclaration(n)) && n.name && ts.isIdentifier(n.name)) declared.add(n.name.text);
    if (ts.isIdentifier(n) && NODE_GLOBALS.has(n.text) && !declared.has(n.text) && !reported.has(n) && isValueUse(n)) found.push(`${at(n)}: uses Node's global '${n.text}'`);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

/** An identifier read as a value: not a property name (`x.process`), a key (`{ process: 1 }`) or a declaration. */
function isValueUse(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p) && p.name === id) return false;
  if ((ts.isPropertyAssignment(p) || ts.isPropertySignature(p) || ts.isPropertyDeclaration(p) || ts.isMethodDeclaration(p) || ts.isMethodSignature(p)) && p.name === id) return false;
  if ((ts.isVariableDeclaration(p) || ts.isParameter(p) || ts.isFunctionDeclaration(p) || ts.isBindingElement(p)) && p.name === id) return false;
  if (ts.isQualifiedName(p) && p.right === id) return false;
  if (ts.isImportSpecifier(p) || ts.isExportSpecifier(p) || ts.isImportClause(p) || ts.isNamespaceImport(p)) return false;
  if (ts.isTypeReferenceNode(p) || ts.isQualifiedName(p)) return false; // NodeJS.Foo types are erased
  return true;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(m|c)?tsx?$|\.(m|c)?js$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

describe('src/ is isomorphic', () => {
  it('has no file that imports a Node built-in or uses Node globals', () => {
    const files = sourceFiles(join(REPO, 'src'));
    expect(files.length).toBeGreaterThan(20);
    const problems = files.flatMap((f) => nodeDependencies(f, readFileSync(f, 'utf8')).map((p) => `${relative(REPO, f)}:${p}`));
    expect(problems, 'Node specifics belong in bindings/node, behind a port the core defines (src/platform.ts)').toEqual([]);
  });

  it('catches every import form, and ignores comments, strings and property names', () => {
    const bad = [
      "import { readFile } from 'node:fs/promises';",
      "import path from 'path';",
      "export { x } from 'fs';",
      "const m = await import('node:crypto');",
      "const c = require('child_process');",
      "import os = require('os');",
      "type T = import('node:stream').Readable;",
      'const cwd = process.cwd();',
      "const b = Buffer.from('x');",
      'const here = __dirname;',
    ];
    for (const line of bad) expect(nodeDependencies('x.ts', line), line).toHaveLength(1);
    const fine = [
      "// import fs from 'node:fs'",
      "const s = 'process.env and node:fs in a string';",
      'const o = { process: 1, Buffer: 2 }; o.process;',
      "import { x } from './fs.js';",
      "import { y } from '@webgpu/types';",
      'function f(process: number) { return process + 1; }',
      'const fsx = 1; let a: NodeJS.Timeout;',
    ];
    for (const line of fine) expect(nodeDependencies('x.ts', line), line).toEqual([]);
  });

  it.skipIf(!existsSync(join(REPO, 'dist/browser.js')))('gives a self-contained browser bundle: dist/browser.js and its chunks import only each other', () => {
    // A page loads dist/browser.js with a script tag or a static server: a bare import ('@huggingface/jinja') cannot
    // resolve there, and a Node built-in cannot load at all. (tsup's browser build must bundle its dependencies.)
    const seen = new Set<string>();
    const outside: string[] = [];
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(REPO, 'dist', file), 'utf8');
      for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*["']([^"']+)["']|\brequire\(\s*["']([^"']+)["']\s*\)/g)) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith('./')) walk(spec.slice(2));
        else outside.push(`${file} imports '${spec}'${isNodeBuiltin(spec) ? ' (a Node built-in)' : ''}`);
      }
    };
    walk('browser.js');
    expect(outside, "set noExternal for the browser build in tsup.config.ts").toEqual([]);
  });
});
