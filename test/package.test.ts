/**
 * The package as a user installs it: `npm pack`'s tarball holds what it should (LICENSE, README, declarations, the
 * embedded model; no source maps), and a strict TypeScript project (skipLibCheck: false) that depends on it
 * type-checks. The install is offline: the tarball unpacked into the consumer's node_modules, beside links to the
 * package's declared dependencies as this repository installed them (so an undeclared one fails the check).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { packTarball } from './helpers/pack.js';
import { REPO } from './helpers/paths.js';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string>; license: string };

const CONSUMER = `
import { LLM, SamplingParams, BeamSearchParams, requestOutputToJSON, type RequestOutput, type RequestOutputJSON, type LLMOptions } from 'webgpu-llm';
import { createApp, serve, type NodeServer } from 'webgpu-llm/server';

const options: LLMOptions = { model: undefined, quantization: 'q8_0', kvCacheMemoryBytes: 64 << 20, gpuDevice: undefined as never };
const llm: LLM = await LLM.create({ maxModelLen: 256 });
const outs: RequestOutput[] = await llm.generate('Once upon a time', new SamplingParams({ maxTokens: 8, logprobs: 2 }));
const json: RequestOutputJSON | undefined = outs[0].toJSON?.();
const same: RequestOutputJSON = requestOutputToJSON(outs[0]);
const chat: RequestOutput[] = await llm.chat([{ role: 'user', content: 'Hi' }], new SamplingParams({ maxTokens: 8 }), { chatTemplate: '{{ messages[0].content }}' });
const beams = await llm.beamSearch(['Once'], new BeamSearchParams({ beamWidth: 2, maxTokens: 4 }));
const text: string = beams[0].sequences[0].text;
const device: GPUDevice | undefined = undefined;
// The README's fetch-style handler: a Web-standard Request in, a Response (or its promise) out.
const handler: (request: Request) => Response | Promise<Response> = createApp({ llm }).fetch;
const server: NodeServer = await serve({ llm, port: 0 });
for await (const out of llm.engine.addRequest({ prompt: 'Hi', params: new SamplingParams({ outputKind: 'delta' }) })) process.stdout.write(out.outputs[0].text);
export { options, json, same, chat, text, device, handler, server };
`;

describe.skipIf(!existsSync(join(REPO, 'dist/index.d.ts')))('the packed package', () => {
  it('packs LICENSE, README, declarations and the model, and no source maps', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO });
    const files = (JSON.parse(stdout)[0].files as { path: string }[]).map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/server.d.ts', 'dist/cli.js', 'models/tinystories-656K/model.safetensors']));
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(readFileSync(join(REPO, 'LICENSE'), 'utf8')).toMatch(pkg.license === 'Apache-2.0' ? /Apache License\s+Version 2\.0/ : /MIT License/);
  });

  it('type-checks a strict consumer project (skipLibCheck: false) against the tarball, installed offline', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webgpu-llm-consumer-'));
    const tarball = await packTarball(dir);
    const modules = join(dir, 'node_modules');
    mkdirSync(join(modules, '@types'), { recursive: true });
    mkdirSync(join(modules, 'webgpu-llm'));
    await run('tar', ['-xzf', tarball, '-C', join(modules, 'webgpu-llm'), '--strip-components=1']);
    // The declared dependencies, and what any TypeScript Node project has (the compiler, Node's types).
    for (const name of [...Object.keys(pkg.dependencies), 'typescript', '@types/node']) {
      const scope = name.includes('/') ? join(modules, name.split('/')[0]) : modules;
      mkdirSync(scope, { recursive: true });
      symlinkSync(join(REPO, 'node_modules', name), join(modules, name), 'dir');
    }
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true, dependencies: { [pkg.name]: pkg.version } }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, files: ['index.ts'] }),
    );
    writeFileSync(join(dir, 'index.ts'), CONSUMER.replace(", gpuDevice: undefined as never", ''));
    const tsc = join(modules, 'typescript/bin/tsc');
    const result = await run('node', [tsc, '-p', dir], { cwd: dir }).then(
      () => '',
      (e: { stdout: string }) => e.stdout,
    );
    expect(result).toBe('');
    // A wrong use is still an error (the check is not vacuous).
    writeFileSync(join(dir, 'index.ts'), CONSUMER);
    await expect(run('node', [tsc, '-p', dir], { cwd: dir })).rejects.toMatchObject({ stdout: expect.stringMatching(/gpuDevice/) });
    // And the installed package runs: its entry points load in plain Node.
    const { stdout: ran } = await run('node', ['--input-type=module', '-e', "import { SamplingParams } from 'webgpu-llm'; import { createApp } from 'webgpu-llm/server'; console.log(new SamplingParams({ maxTokens: 3 }).maxTokens, typeof createApp)"], { cwd: dir });
    expect(ran).toBe('3 function\n');
  });
});

describe('tests without ../shared/models', () => {
  it('turn a file that reads the shared models into one skipped test naming why, and leave others alone', async () => {
    const { needsSharedModels, skipWithoutSharedModels } = await import('./helpers/shared-models.js');
    expect(needsSharedModels("import { loadGoldens } from './helpers/paths.js';")).toBe(true);
    expect(needsSharedModels("const d = modelDir('qwen3-rand');")).toBe(true);
    expect(needsSharedModels("import { tokenizerFor } from './helpers/tokenizer-source.js';")).toBe(true);
    expect(needsSharedModels("import { REPO } from './helpers/paths.js';")).toBe(false);
    // Fresh modules that see no shared-models folder.
    vi.stubEnv('WEBGPU_LLM_TEST_MODELS', '/nonexistent-models');
    vi.resetModules();
    const absent = await import('./helpers/shared-models.js');
    vi.unstubAllEnvs();
    vi.resetModules();
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (lines.push(String(s)), true));
    const a = absent.skipWithoutSharedModels('/r/test/a.test.ts', 'loadGoldens()');
    const b = absent.skipWithoutSharedModels('/r/test/b.test.ts', 'REPO');
    const c = absent.skipWithoutSharedModels('/r/test/helpers/c.ts', 'loadGoldens()');
    write.mockRestore();
    expect(a).toBe("import { it } from 'vitest';\nit.skip(\"a.test.ts needs the shared test models at /nonexistent-models (absent; see README \\\"Quick start\\\")\", () => {});\n");
    expect([b, c]).toEqual([null, null]);
    expect(lines).toEqual(['skipped: a.test.ts needs the shared test models at /nonexistent-models (absent; see README "Quick start")\n']);
    expect(skipWithoutSharedModels('/r/test/a.test.ts', 'loadGoldens()')).toBe(existsSync(join(REPO, '../shared/models')) ? null : expect.any(String));
  });
});
