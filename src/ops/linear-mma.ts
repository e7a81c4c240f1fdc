/**
 * The subgroup-matrix linear kernel (`shaders/linear.mma.wgsl`) for one tile shape: its prelude and the unrolled
 * statements that replace the shader's `// @generated <part>` lines. Subgroup matrices kept in arrays go to local
 * memory (13x slower on an H200; bench/mma-peak.ts), so each result block is a named variable and everything that
 * touches them is written out per block here.
 */
import type { MmaTile } from '../gpu/tuning.js';
import mmaSource from '../../shaders/linear.mma.wgsl';
import qBlockLib from '../../shaders/lib/q_block.wgsl';

/** Workgroup memory a tile needs (bytes): the staged x rows, w rows (unless DIRECT) and the epilogue's blocks. */
export function mmaSharedBytes([wm, wn, sgm, sgn, sk, km = 1, direct = 0]: MmaTile): number {
  return (16 * wm * sgm + (direct ? 0 : 16 * wn * sgn)) * (32 * km * sk + 8) * 2 + sgm * sgn * sk * 2048;
}

/** K a workgroup stages per step (BK in the shader). */
export const mmaStepK = ([, , , , sk, km = 1]: MmaTile): number => 32 * sk * km;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * WGSL prelude and body of linear.mma.wgsl for `tile` (gated: WN / 2 gate blocks, then WN / 2 up blocks); with
 * `blocks` (a block format's WGSL, BlockFormat.wgsl: its qChunk), for weights of that format (never DIRECT).
 */
export function mmaKernelCode(tile: MmaTile, gated: boolean, blocks?: string): { prelude: string; code: string } {
  const [wm, wn, sgm, sgn, sk, km = 1, direct = 0, xh = 0] = tile;
  if (blocks && direct) throw new Error(`linear.mma: tile ${tile.join('')} loads f16 weight blocks directly; block formats are staged`);
  const threads = 32 * sgm * sgn * sk;
  const chunks = mmaStepK(tile) / 8;
  // Per-thread chunks of a step: x rows, then (staged) w rows (block formats: 32-element chunks); a guard where
  // the threads do not divide them evenly.
  const wChunks = blocks ? mmaStepK(tile) / 32 : chunks;
  const parts = [
    { name: 'x', total: 16 * wm * sgm * chunks, load: 'loadX(tileM, ', stage: 'stageX' },
    ...(direct ? [] : [{ name: 'w', total: 16 * wn * sgn * wChunks, load: 'loadW(o0, ', stage: 'stageW' }]),
  ];
  const decl: string[] = [];
  const stage: string[] = [];
  const prefetch: string[] = [];
  for (const { name, total, load, stage: fn } of parts) {
    for (const q of range(Math.ceil(total / threads))) {
      const e = `tid + ${q * threads}u`;
      const even = (q + 1) * threads <= total;
      const clamped = even ? e : `min(${e}, ${total - 1}u)`;
      decl.push(`var p${name}${q} = ${load}${clamped}, kBegin);`);
      stage.push(even ? `${fn}(${e}, p${name}${q});` : `if (${e} < ${total}u) { ${fn}(${e}, p${name}${q}); }`);
      prefetch.push(`p${name}${q} = ${load}${clamped}, k0 + BK);`);
    }
  }
  const staging = ['workgroupBarrier();', ...stage, 'workgroupBarrier();'];
  for (const i of range(wm)) for (const j of range(wn)) decl.push(`var c${i}_${j}: subgroup_matrix_result<f32, 16, 16>;`);
  const steps = range(2 * km); // 16 of K each
  const left = 'subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>';
  const right = 'subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>';
  const mma = (a: (i: number) => string, b: (j: number) => string) =>
    range(wm).flatMap((i) => range(wn).map((j) => `c${i}_${j} = subgroupMatrixMultiplyAccumulate(${a(i)}, ${b(j)}, c${i}_${j});`));
  const current: string[] = [];
  const products: string[] = [];
  const loadA = (name: string, i: number, kk: string) => `let ${name} = ${left}(&xs, aBase + ${16 * i}u * LD + ${kk}, false, LD);`;
  if (direct) {
    // Weight blocks straight from memory, one step ahead in registers: b<s>_<j> holds the next step's blocks, and
    // this step's are copied to q<s>_<j> before the next are loaded.
    for (const j of range(wn)) decl.push(`let bAt${j} = stagedRow(o0, ((sg / SK) % SGN) * 16u * WN + ${16 * j}u) * p.wStride + kg * KW;`);
    const loadB = (j: number, k: string) => `${right}(&w, bAt${j} + ${k}, true, p.wStride)`;
    for (const s of steps) {
      for (const j of range(wn)) {
        decl.push(`var b${s}_${j} = ${loadB(j, `kBegin + ${16 * s}u`)};`);
        current.push(`let q${s}_${j} = b${s}_${j};`);
        prefetch.push(`b${s}_${j} = ${loadB(j, `k0 + BK + ${16 * s}u`)};`);
      }
      products.push(...range(wm).map((i) => loadA(`a${s}_${i}`, i, `${16 * s}u`)), ...mma((i) => `a${s}_${i}`, (j) => `q${s}_${j}`));
    }
  } else {
    products.push(
      'for (var s = 0u; s < 2u * KM; s++) {',
      '  let kk = 16u * s;',
      ...range(wm).map((i) => `  ${loadA(`a${i}`, i, 'kk')}`),
      ...range(wn).map((j) => `  let b${j} = ${right}(&ws, bBase + ${16 * j}u * LD + kk, true, LD);`),
      ...mma((i) => `a${i}`, (j) => `b${j}`).map((l) => `  ${l}`),
      '}',
    );
  }
  const nb = gated ? wn / 2 : wn;
  const epilogue = range(wm).flatMap((i) =>
    range(nb).flatMap((j) => [
      `subgroupMatrixStore(&cs, sg * 512u, c${i}_${j}, false, 16u);`,
      ...(gated ? [`subgroupMatrixStore(&cs, sg * 512u + 256u, c${i}_${j + nb}, false, 16u);`] : []),
      `writeBlocks(tid, tileM, o0, split, ${i}u, ${j}u);`,
    ]),
  );
  const generated: Record<string, string[]> = { declarations: decl, staging, current, prefetch, products, epilogue };
  // DIRECT: the staged-weight region (its binding, workgroup array, loadW, stageW) gives way to w as halves;
  // block formats: to the staged-q region, which dequantizes as it stages.
  const region = (name: string) => new RegExp(`^// @${name} \\{[^]*?^// @${name} \\}$`, 'm');
  let source = mmaSource.replace(region('staged-q'), '');
  if (direct) source = source.replace(region('staged-w'), '@group(0) @binding(2) var<storage, read> w: array<f16>;');
  if (blocks) source = source.replace(region('staged-w'), () => mmaSource.match(region('staged-q'))![0]) + `\n${qBlockLib}`;
  // x's form: the @x-f32 region or the @x-f16 one stays.
  const xForm = xh ? 'x-f16' : 'x-f32';
  source = source.replace(/^\/\/ @(x-[a-z0-9]+) \{[^]*?^\/\/ @\1 \}\n/gm, (region: string, name: string) => (name === xForm ? region : ''));
  const code = source.replace(/^( *)\/\/ @generated (\w+).*$/gm, (_line, indent: string, part: string) => {
    const lines = generated[part];
    if (!lines) throw new Error(`linear.mma.wgsl: no generated part '${part}'`);
    return lines.map((l) => indent + l).join('\n');
  });
  const prelude =
    'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n' +
    'diagnostic(off, chromium.subgroup_matrix_uniformity);\n' +
    `const WM = ${wm}u;\nconst WN = ${wn}u;\nconst SGM = ${sgm}u;\nconst SGN = ${sgn}u;\nconst SK = ${sk}u;\nconst KM = ${km}u;\n` +
    (blocks ?? '');
  return { prelude, code };
}
