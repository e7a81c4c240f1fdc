/**
 * The relaxed SIMD builds of the CPU kernels give the SIMD128 builds' outputs bit for bit (test/cpu/relaxed-builds.mjs:
 * q4_0 matmuls over ragged shapes, GEMV and GEMM; packRows' bytes). Run in this process where the engine has relaxed
 * SIMD (relaxedSimd), else in Deno (npm package `deno`) when installed: Node 20's V8 gets the relaxed dot wrong even
 * behind its flag, which relaxedSimd's known answer catches.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadCpuKernels, relaxedSimd, relaxedSimdFaster } from '../../src/cpu/cpu-wasm.js';
import { REPO } from '../helpers/paths.js';
// @ts-expect-error: a plain JavaScript module without declarations
import { compareBuilds } from './relaxed-builds.mjs';

const SCRIPT = join(REPO, 'test/cpu/relaxed-builds.mjs');
const DENO = join(REPO, 'node_modules/.bin/deno');
const wasm = (name: string) => readFileSync(join(REPO, `build/${name}.wasm`));

interface Result {
  mismatches: string[];
  cases: number;
}

describe('relaxed SIMD build', () => {
  it('gives the SIMD128 build\'s q4_0 and q8_0 matmul outputs bit for bit, single- and multi-threaded builds', async () => {
    let result: Result;
    if (await relaxedSimd()) {
      result = (await compareBuilds([
        ['cpu', wasm('cpu'), false],
        ['cpu-relaxed', wasm('cpu-relaxed'), false],
        ['cpu-mt-relaxed', wasm('cpu-mt-relaxed'), true],
      ])) as Result;
    } else if (existsSync(DENO)) {
      const { stdout } = await promisify(execFile)(DENO, ['run', '--allow-read', SCRIPT], { cwd: REPO });
      result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Result;
    } else {
      console.warn(`skipped: no relaxed SIMD in this engine and no ${DENO} (npm install)`);
      return;
    }
    expect(result.mismatches).toEqual([]);
    expect(result.cases).toBe(870);
  });

  it('loads the SIMD128 build on request, and the relaxed one where the engine has it', async () => {
    const plain = await loadCpuKernels({ relaxed: false });
    expect(plain.k.linearQ8).toBeTypeOf('function');
    if (await relaxedSimd()) expect((await loadCpuKernels({ relaxed: true })).k.linearQ8).toBeTypeOf('function');
    else await expect(loadCpuKernels({ relaxed: true })).rejects.toThrow();
  });

  it('is the default only where the engine runs it correctly, after timing it against the SIMD128 build', async () => {
    const faster = await relaxedSimdFaster();
    expect(typeof faster).toBe('boolean');
    if (!(await relaxedSimd())) expect(faster).toBe(false);
    expect(await relaxedSimdFaster()).toBe(faster); // timed once per process
  });
});
