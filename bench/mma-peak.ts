/**
 * Subgroup-matrix (tensor core) peak through Dawn, and the layout finding behind linear.mma.wgsl: products on
 * operands in registers, with result blocks held in a WGSL array and in variables of their own, and with operands
 * loaded from workgroup memory every step.
 *
 *   node build/bench/mma-peak.js
 *
 * Measured on an H200 (2026-11-27) with the lab version of this script: 4 blocks in an array 428-590 TFLOPS, 8
 * blocks in an array 35 TFLOPS (the array goes to local memory); 8 and 16 blocks in variables, their operands loaded
 * from workgroup memory every step, 435-474 TFLOPS. (This script's variable cases keep the operands in registers.)
 */
import { create, globals } from 'webgpu';
import { dawnFlags } from '../bindings/node/webgpu.js';

Object.assign(globalThis, globals);
const gpu = create(dawnFlags());
const adapter = await gpu.requestAdapter();
if (!adapter?.features.has('chromium-experimental-subgroup-matrix' as GPUFeatureName)) {
  console.log('no subgroup matrices on this adapter');
  process.exit(0);
}
const device = await adapter.requestDevice({
  requiredFeatures: ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as GPUFeatureName[],
  requiredLimits: { maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize },
});
const out = device.createBuffer({ size: 1 << 24, usage: GPUBufferUsage.STORAGE });
const WORKGROUPS = 1056;
const ITERS = 2048;
const head =
  'enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n' +
  'diagnostic(off, chromium.subgroup_matrix_uniformity);\n@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n';
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function run(name: string, code: string, flopsPerWorkgroup: number) {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
  const go = async (n: number) => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(WORKGROUPS);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await go(1);
  const t0 = performance.now();
  await go(10);
  const ms = (performance.now() - t0) / 10;
  const error = await device.popErrorScope();
  console.log(`${name.padEnd(36)} ${ms.toFixed(3)} ms  ${((WORKGROUPS * flopsPerWorkgroup) / ms / 1e9).toFixed(1)} TFLOPS ${error ? error.message : ''}`);
}

/** Register operands, `blocks` result blocks in an array or in variables, `sgs` subgroups per workgroup. */
function registers(sgs: number, blocks: number, named: boolean): string {
  const decl = named ? range(blocks).map((j) => `var c${j}: subgroup_matrix_result<f32, 16, 16>;`).join('\n  ') : `var c: array<subgroup_matrix_result<f32, 16, 16>, ${blocks}>;`;
  const acc = (j: number) => (named ? `c${j}` : `c[${j}]`);
  return `${head}
var<workgroup> sh: array<f16, 4096>;
@compute @workgroup_size(${32 * sgs})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  for (var i = tid; i < 4096u; i += ${32 * sgs}u) { sh[i] = f16(f32(i % 7u) * 0.01); }
  workgroupBarrier();
  let a = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&sh, 0u, false, 16u);
  let b = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&sh, 256u, true, 16u);
  ${decl}
  for (var it = 0u; it < ${ITERS}u; it++) {
    ${range(blocks).map((j) => `${acc(j)} = subgroupMatrixMultiplyAccumulate(a, b, ${acc(j)});`).join('\n    ')}
  }
  ${range(blocks).map((j) => `subgroupMatrixStore(&o, ((wid.x * ${sgs}u + tid / 32u) * ${blocks}u + ${j}u) * 256u % 4000000u, ${acc(j)}, false, 16u);`).join('\n  ')}
}`;
}

for (const [sgs, blocks, named] of [[1, 4, false], [4, 4, false], [4, 8, false], [4, 8, true], [4, 16, true]] as const) {
  await run(`registers sgs=${sgs} blocks=${blocks}${named ? ' named' : ' array'}`, registers(sgs, blocks, named), sgs * blocks * ITERS * 8192);
}
process.exit(0);
