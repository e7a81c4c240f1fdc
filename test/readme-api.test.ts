/**
 * The README documents the whole public API: every runtime export of each entry point is named in it, and the
 * "The rest of the API" program runs as written (against the built package, through its own `exports` map) and
 * prints what its comments say.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const README = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The first ```ts block after `heading`. */
function codeAfter(heading: string): string {
  const at = README.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README has no heading '${heading}'`);
  const m = /```ts\n([\s\S]*?)```/.exec(README.slice(at));
  if (!m) throw new Error(`no ts block after '${heading}'`);
  return m[1];
}

describe('README API coverage', () => {
  for (const entry of ['webgpu-llm', 'webgpu-llm/server', 'webgpu-llm/edge', 'webgpu-llm/browser']) {
    it(`names every runtime export of ${entry}`, async () => {
      const names = Object.keys(await import(entry));
      expect(names.length).toBeGreaterThan(3);
      const missing = names.filter((n) => !new RegExp(`\\b${n}\\b`).test(README));
      expect(missing).toEqual([]);
    });
  }

  it('runs "The rest of the API" as written', async () => {
    const esbuild = await import('esbuild');
    const { code } = await esbuild.transform(codeAfter('### The rest of the API'), { loader: 'ts', format: 'esm' });
    // Inside the repository, so that `import 'webgpu-llm'` resolves to this package's built dist through its exports.
    mkdirSync(join(REPO, '.cache'), { recursive: true });
    const file = join(REPO, '.cache/readme-api.mjs');
    writeFileSync(file, code);
    const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: REPO, timeout: 120_000 });
    const lines = stdout.split('\n');
    const line = (start: string) => lines.find((l) => l.startsWith(start));

    // The logits processor took effect: greedy text without the banned word (the model's favourite name).
    const completion = JSON.parse(line('{"index":0')!);
    expect(completion.tokenIds).toHaveLength(16);
    expect(completion.text).not.toContain('Lily');
    expect(completion.finishReason).toBe('length');
    expect(stdout).toContain('there was a cat');
    expect(stdout).toContain('user: Hi\nassistant:');
    expect(line('-1.0666')).toBe(String(-3.2 / 3));
    expect(stdout).toContain('LlamaForCausalLM 2 16');
    expect(stdout).toContain("name: 'get_weather'");
    expect(stdout).toContain("reasoning: 'The user greets.'");
    expect(stdout).toContain('temperature temperature must be non-negative');
    expect(stdout).toMatch(/no-such-folder .*does not exist/);
    expect(stdout).toMatch(/the prompt has \d+ tokens; the maximum model length is 64/);
  }, 180_000);
});
