/**
 * The subgroup-matrix linear kernel (`shaders/linear.mma.wgsl`) for one tile shape: its prelude and the unrolled
 * statements that replace the shader's `// @generated <part>` lines. Subgroup matrices kept in arrays go to local
 * memory (13x slower on an H200; bench/mma-peak.ts), so each result block is a named variable and everything that
 * touches them is written out per block here.
 */
import type { MmaTile } from '../gpu/tuning.js';
import mmaSource from '../../shaders/linear.mma.wgsl';

/** Workgroup memory a tile needs (bytes): the staged x and w rows and the epilogue's two blocks per subgroup. */
export function mmaSharedBytes([wm, wn, sgm, sgn, sk]: MmaTile): number {
  return (16 * wm * sgm + 16 * wn * sgn) * (32 * sk + 8) * 2 + sgm * sgn * sk * 2048;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** WGSL prelude and body of linear.mma.wgsl for `tile` (gated: WN / 2 gate blocks, then WN / 2 up blocks). */
export function mmaKernelCode(tile: MmaTile, gated: boolean): { prelude: string; code: string } {
  const [wm, wn, sgm, sgn, sk] = tile;
  const threads = 32 * sgm * sgn * sk;
  const chunks = (32 * sk) / 8;
  // Per-thread chunks of a step: x rows, then w rows; a guard where the threads do not divide them evenly.
  const parts = [
    { name: 'x', total: 16 * wm * sgm * chunks, load: 'loadX(tileM, ', stage: 'stageX' },
    { name: 'w', total: 16 * wn * sgn * chunks, load: 'loadW(o0, ', stage: 'stageW' },
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
  for (const i of range(wm)) for (const j of range(wn)) decl.push(`var c${i}_${j}: subgroup_matrix_result<f32, 16, 16>;`);
  const products = [
    ...range(wm).map((i) => `let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&xs, aBase + ${16 * i}u * LD + kk, false, LD);`),
    ...range(wn).map((j) => `let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&ws, bBase + ${16 * j}u * LD + kk, true, LD);`),
    ...range(wm).flatMap((i) => range(wn).map((j) => `c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`)),
  ];
  const nb = gated ? wn / 2 : wn;
  const epilogue = range(wm).flatMap((i) =>
    range(nb).flatMap((j) => [
      `subgroupMatrixStore(&cs, sg * 512u, c${i}_${j}, false, 16u);`,
      ...(gated ? [`subgroupMatrixStore(&cs, sg * 512u + 256u, c${i}_${j + nb}, false, 16u);`] : []),
      `writeBlocks(tid, tileM, o0, split, ${i}u, ${j}u);`,
    ]),
  );
  const generated: Record<string, string[]> = { declarations: decl, staging: stage, prefetch, products, epilogue };
  const code = mmaSource.replace(/^( *)\/\/ @generated (\w+).*$/gm, (_line, indent: string, part: string) => {
    const lines = generated[part];
    if (!lines) throw new Error(`linear.mma.wgsl: no generated part '${part}'`);
    return lines.map((l) => indent + l).join('\n');
  });
  const prelude =
    'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n' +
    'diagnostic(off, chromium.subgroup_matrix_uniformity);\n' +
    `const WM = ${wm}u;\nconst WN = ${wn}u;\nconst SGM = ${sgm}u;\nconst SGN = ${sgn}u;\nconst SK = ${sk}u;\n`;
  return { prelude, code };
}
