/**
 * WebGPU for Node through Dawn (npm package `webgpu`).
 *
 * Dawn's `create()` result must stay strongly referenced for as long as any device made from it lives (dawn.node
 * segfaults or hangs otherwise), so it is created once per process and held here, in the binding, never in `src/`.
 *
 * On a machine without a Vulkan driver we point the Vulkan loader at the CPU driver (Mesa lavapipe, fetched by
 * `webgpu-llm setup` into ~/.cache/webgpu-llm/lavapipe, or by `scripts/setup.sh` into the checkout's .cache/lavapipe)
 * before Dawn starts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLavapipeIcd } from './lavapipe.js';

/**
 * Dawn toggles: NVIDIA's Vulkan driver exposes shader-f16 only with vulkan_enable_f16_on_nvidia; allow_unsafe_apis
 * exposes chromium-experimental-subgroup-matrix (tensor cores), which the GEMM uses for 9-64-token steps.
 * WEBGPU_LLM_DAWN_TOGGLES (comma-separated Dawn toggle names) adds more, for experiments. The benchmarks that
 * create a Dawn instance of their own pass these too.
 */
export function dawnFlags(): string[] {
  const extra = process.env.WEBGPU_LLM_DAWN_TOGGLES?.split(',').filter(Boolean) ?? [];
  return [`enable-dawn-features=${['vulkan_enable_f16_on_nvidia', 'allow_unsafe_apis', ...extra].join(',')}`];
}

const SYSTEM_ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

let gpuPromise: Promise<GPU> | undefined;
/** The strong reference that keeps Dawn's instance alive for the whole process. */
let dawnGpu: GPU | undefined;

/**
 * Dawn's `GPU` object, created on first call and shared by every later call.
 *
 * @example
 * const ctx = await GpuContext.create(await nodeGpu());
 */
export function nodeGpu(): Promise<GPU> {
  gpuPromise ??= createGpu();
  return gpuPromise;
}

async function createGpu(): Promise<GPU> {
  if (process.platform === 'linux') prepareVulkanEnv();
  const { create, globals } = await import('webgpu');
  // WebGPU's enum objects (GPUBufferUsage, GPUMapMode, ...) as browsers expose them; keep any already defined.
  for (const [name, value] of Object.entries(globals as Record<string, unknown>)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  dawnGpu = create(dawnFlags());
  return dawnGpu;
}

/**
 * Chooses the Vulkan driver before Dawn loads. A user's choice (VK_ICD_FILENAMES, VK_DRIVER_FILES,
 * WEBGPU_LLM_VULKAN_ICD) wins. Otherwise the fetched lavapipe (lavapipe.ts), when present, is the only driver on a machine
 * without one, and an additional driver on a machine with some: a GPU is still preferred, and an outdated system
 * lavapipe (Mesa 22 lacks features Dawn requires) is skipped by Dawn in favour of ours.
 */
function prepareVulkanEnv(): void {
  const env = process.env;
  if (!env.XDG_RUNTIME_DIR) {
    // Mesa prints "XDG_RUNTIME_DIR is invalid or not set" on every device creation otherwise. One folder per user,
    // reused by every process (the spec wants it owned by the user with mode 0700).
    const dir = join(tmpdir(), `webgpu-llm-xdg-${process.getuid?.() ?? 'user'}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    env.XDG_RUNTIME_DIR = dir;
  }
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return;
  if (env.WEBGPU_LLM_VULKAN_ICD) {
    env.VK_ICD_FILENAMES = env.WEBGPU_LLM_VULKAN_ICD;
    return;
  }
  const icd = findLavapipeIcd(packageRoot());
  if (!icd) return;
  if (!SYSTEM_ICD_DIRS.some(hasIcdJson)) env.VK_ICD_FILENAMES = icd;
  else if (!env.VK_ADD_DRIVER_FILES?.split(':').includes(icd)) {
    env.VK_ADD_DRIVER_FILES = env.VK_ADD_DRIVER_FILES ? `${env.VK_ADD_DRIVER_FILES}:${icd}` : icd;
  }
}

function hasIcdJson(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => f.endsWith('.json'));
  } catch {
    return false;
  }
}

/** The folder holding webgpu-llm's package.json, found by walking up from this module (src or dist). */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'webgpu-llm') return dir;
      } catch {
        // An unreadable package.json is not ours; keep walking.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
