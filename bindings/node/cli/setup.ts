/** `webgpu-llm setup`: fetches the CPU Vulkan driver (Mesa lavapipe) for WebGPU on machines without a GPU. */
import { defaultLavapipeDir, setupLavapipe } from '../lavapipe.js';
import { parseCommand, type CommandSpec } from './args.js';

export const SETUP: CommandSpec = {
  name: 'setup',
  usage: '[--dir DIR]',
  summary:
    "Fetches Mesa's lavapipe, a Vulkan driver that runs on the CPU, for WebGPU on a machine without a GPU (Linux x86-64 with apt-get: Debian, Ubuntu), into a cache folder; nothing is installed system-wide except, as root, the libraries it loads (libvulkan1, libllvm15) when missing. WebGPU then finds it by itself. Optional: the CPU backend (--device cpu, or device 'auto' without an adapter) needs nothing.",
  flags: [{ name: 'dir', kind: 'string', metavar: 'DIR', help: 'where to put the driver (webgpu-llm looks in the default and in a checkout\'s .cache/lavapipe; elsewhere set WEBGPU_LLM_VULKAN_ICD=DIR/lvp_icd.json)', defaultText: '$XDG_CACHE_HOME/webgpu-llm/lavapipe' }],
  examples: ['webgpu-llm setup', 'webgpu-llm doctor   # then: the lavapipe adapter'],
};

export async function setupCommand(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(SETUP, argv);
  const icd = setupLavapipe((v.dir as string | undefined) ?? defaultLavapipeDir(), (line) => process.stderr.write(`[setup] ${line}\n`));
  process.stdout.write(`${icd}\n`);
}
