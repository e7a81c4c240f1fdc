/**
 * `webgpu-llm doctor`: what this machine offers the library. The CPU backend (its wasm kernels instantiated, the
 * threads it would use), the Vulkan driver Dawn was pointed at, each WebGPU adapter with its features and limits,
 * and what device 'auto' would pick (the same test as LLM.create: an adapter from requestAdapter, else the CPU).
 */
import { availableParallelism } from 'node:os';
import { loadCpuKernels } from '../../../src/cpu/cpu-wasm.js';
import { nodeCpuWorkers } from '../cpu-workers.js';
import { packageRoot } from '../index.js';
import { findLavapipeIcd, setupUnsupported } from '../lavapipe.js';
import { nodeGpu } from '../webgpu.js';
import { parseCommand, type CommandSpec } from './args.js';
import { version } from './main.js';

export const DOCTOR: CommandSpec = {
  name: 'doctor',
  usage: '[--json]',
  summary:
    "Prints the backends this machine has: the CPU backend (WebAssembly, its threads) and WebGPU (the Vulkan driver used, each adapter's features and limits), and which one device 'auto' picks. Without an adapter it says how to get one.",
  flags: [{ name: 'json', kind: 'boolean', help: 'print one JSON object instead of text' }],
  examples: ['webgpu-llm doctor', 'webgpu-llm doctor --json | jq .auto'],
};

export interface AdapterReport {
  /** requestAdapter's powerPreference that gave it. */
  powerPreference: GPUPowerPreference;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

export interface DoctorReport {
  version: string;
  runtime: { node: string; platform: string; arch: string; cores: number };
  cpu: { available: boolean; error?: string; threads: number; sharedMemory: boolean };
  webgpu: { available: boolean; error?: string; vulkanDrivers?: string; lavapipe?: string; adapters: AdapterReport[] };
  /** What LLM.create({ device: 'auto' }) would use, and why. */
  auto: { device: 'webgpu' | 'cpu'; reason: string };
  /** What to do next, where something is missing. */
  hints: string[];
}

async function adapterReport(gpu: GPU, powerPreference: GPUPowerPreference): Promise<AdapterReport | null> {
  const a = await gpu.requestAdapter({ powerPreference });
  if (!a) return null;
  const limits: Record<string, number> = {};
  // GPUSupportedLimits' fields are getters on its prototype: for-in reaches them.
  for (const k in a.limits) {
    const v = (a.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') limits[k] = v;
  }
  const info = a.info;
  return {
    powerPreference,
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    features: [...a.features].map(String).sort(),
    limits,
  };
}

export async function doctorReport(): Promise<DoctorReport> {
  const hints: string[] = [];
  const cpu: DoctorReport['cpu'] = { available: true, threads: nodeCpuWorkers.defaultThreads, sharedMemory: typeof SharedArrayBuffer === 'function' };
  try {
    (await loadCpuKernels()).dispose();
  } catch (err) {
    Object.assign(cpu, { available: false, error: err instanceof Error ? err.message : String(err) });
  }
  const webgpu: DoctorReport['webgpu'] = { available: false, adapters: [] };
  try {
    const gpu = await nodeGpu();
    const env = process.env;
    // What webgpu.ts chose before Dawn started (or the user's own choice).
    webgpu.vulkanDrivers = [env.VK_ICD_FILENAMES, env.VK_DRIVER_FILES, env.VK_ADD_DRIVER_FILES].filter(Boolean).join(':') || undefined;
    webgpu.lavapipe = findLavapipeIcd(packageRoot());
    for (const pref of ['high-performance', 'low-power'] as const) {
      const r = await adapterReport(gpu, pref);
      // One physical adapter often answers both preferences: list it once.
      if (r && !webgpu.adapters.some((x) => x.description === r.description && x.device === r.device && x.vendor === r.vendor)) webgpu.adapters.push(r);
    }
    webgpu.available = webgpu.adapters.length > 0;
    if (!webgpu.available) webgpu.error = 'no WebGPU adapter';
  } catch (err) {
    webgpu.error = `WebGPU unavailable: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (!webgpu.available) {
    const why = setupUnsupported();
    hints.push(why === null && !webgpu.lavapipe ? 'for WebGPU without a GPU: npx webgpu-llm setup (fetches Mesa lavapipe, a CPU Vulkan driver)' : why ?? 'lavapipe is fetched but gives no adapter: check WEBGPU_LLM_VULKAN_ICD / VK_ICD_FILENAMES');
    hints.push('the CPU backend needs nothing: --device cpu (device \'auto\' picks it already)');
  }
  const auto: DoctorReport['auto'] = webgpu.available
    ? { device: 'webgpu', reason: `adapter ${describe(webgpu.adapters[0])}` }
    : { device: 'cpu', reason: webgpu.error ?? 'no WebGPU adapter' };
  return {
    version: version(),
    runtime: { node: process.version, platform: process.platform, arch: process.arch, cores: availableParallelism() },
    cpu,
    webgpu,
    auto,
    hints,
  };
}

const describe = (a: AdapterReport) => [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ') || '(unnamed)';

/** The report as text: one section per backend. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [`webgpu-llm ${r.version} on Node ${r.runtime.node} (${r.runtime.platform}-${r.runtime.arch}, ${r.runtime.cores} cores)`, ''];
  lines.push(`cpu backend (WebAssembly): ${r.cpu.available ? `available, ${r.cpu.threads} threads${r.cpu.sharedMemory ? '' : ' (no SharedArrayBuffer: 1)'}` : `unavailable: ${r.cpu.error}`}`);
  lines.push(`webgpu: ${r.webgpu.available ? `${r.webgpu.adapters.length} adapter${r.webgpu.adapters.length > 1 ? 's' : ''}` : `unavailable (${r.webgpu.error})`}`);
  if (r.webgpu.vulkanDrivers) lines.push(`  vulkan drivers: ${r.webgpu.vulkanDrivers}`);
  if (r.webgpu.lavapipe) lines.push(`  lavapipe: ${r.webgpu.lavapipe}`);
  for (const a of r.webgpu.adapters) {
    lines.push(`  adapter (${a.powerPreference}): ${describe(a)}${a.isFallbackAdapter ? ' [fallback]' : ''}`);
    lines.push(`    features: ${a.features.join(', ') || '(none)'}`);
    lines.push(`    limits: ${Object.entries(a.limits).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  }
  lines.push('', `device 'auto' picks: ${r.auto.device} (${r.auto.reason})`);
  for (const h of r.hints) lines.push(`hint: ${h}`);
  return `${lines.join('\n')}\n`;
}

export async function doctorCommand(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(DOCTOR, argv);
  const report = await doctorReport();
  process.stdout.write(v.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report));
}
