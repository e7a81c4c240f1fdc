/** The `webgpu-llm` command, as a user runs it (built by `npm run build`, which the set-up script runs). */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { REPO } from './helpers/paths.js';

const run = promisify(execFile);
const CLI = join(REPO, 'dist/cli.js');

describe.skipIf(!existsSync(CLI))('webgpu-llm generate', () => {
  it('streams a greedy story from the embedded default model, the same as LLM.generate', async () => {
    const { stdout, stderr } = await run('node', [CLI, 'generate', 'Once upon a time', '--max-tokens', '24', '--temperature', '0'], { timeout: 120_000 });
    const llm = await LLM.create();
    const [ref] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 24 }));
    await llm.dispose();
    expect(stdout).toBe(`Once upon a time${ref.outputs[0].text}\n`);
    expect(stderr).toMatch(/tokens\/s/);
  });

  it('is reproducible with --seed and fails clearly on bad flags', async () => {
    const args = ['generate', 'Tom', '--max-tokens', '12', '--seed', '3', '--temperature', '0.9'];
    const a = await run('node', [CLI, ...args], { timeout: 120_000 });
    const b = await run('node', [CLI, ...args], { timeout: 120_000 });
    expect(a.stdout).toBe(b.stdout);
    await expect(run('node', [CLI, 'generate', 'x', '--max-tokens', 'many'])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/--max-tokens/) });
    await expect(run('node', [CLI, 'generate', 'x', '--temperature', '-1'])).rejects.toMatchObject({ stderr: expect.stringMatching(/temperature/) });
    await expect(run('node', [CLI, 'generate', 'x', '--model', '/no/such/dir'])).rejects.toMatchObject({ stderr: expect.stringMatching(/\/no\/such\/dir/) });
  });
});
