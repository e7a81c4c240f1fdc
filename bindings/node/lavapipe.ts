/**
 * Mesa's lavapipe, a Vulkan driver that runs on the CPU, for WebGPU (Dawn) on machines without a GPU: `webgpu-llm
 * setup` fetches it from Debian's bookworm-backports (Mesa 25; Debian 12's own Mesa 22 lacks features Dawn needs)
 * and unpacks it into a cache folder, never installing it system-wide; webgpu.ts points Vulkan's loader at it.
 * scripts/setup.sh calls this too (`setup --dir .cache/lavapipe`), so there is one copy of the recipe.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The file naming the driver for Vulkan's loader (VK_ICD_FILENAMES). */
export const ICD_FILE = 'lvp_icd.json';

/** Where `setup` puts the driver by default: $XDG_CACHE_HOME/webgpu-llm/lavapipe (~/.cache/... without it). */
export function defaultLavapipeDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'webgpu-llm', 'lavapipe');
}

/** The folders searched for a fetched driver, in order: the package's .cache/lavapipe (a checkout), the user cache. */
export function lavapipeDirs(root: string | undefined): string[] {
  return [...(root ? [join(root, '.cache/lavapipe')] : []), defaultLavapipeDir()];
}

/** The first fetched driver's ICD file, if any. */
export function findLavapipeIcd(root: string | undefined): string | undefined {
  return lavapipeDirs(root)
    .map((d) => join(d, ICD_FILE))
    .find((f) => existsSync(f));
}

/** Why `setup` cannot run here (null: it can): Linux x86-64 with apt-get only. */
export function setupUnsupported(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `setup fetches Mesa's lavapipe for Linux x86-64 only (this is ${process.platform}-${process.arch}): install your platform's Vulkan/Metal/D3D12 driver for WebGPU, or use --device cpu`;
  }
  if (!hasCommand('apt-get')) return "setup needs apt-get (Debian/Ubuntu): install Mesa >= 23's lavapipe (package mesa-vulkan-drivers) yourself and set WEBGPU_LLM_VULKAN_ICD to its lvp_icd.*.json, or use --device cpu";
  return null;
}

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Shared libraries the driver loads that the system must have (ldconfig's names -> Debian packages). */
const NEEDED_LIBS: [lib: string, pkg: string][] = [
  ['libvulkan.so.1', 'libvulkan1'],
  ['libLLVM-15.so.1', 'libllvm15'],
];

/**
 * Fetches lavapipe into `dir` (idempotent: an existing driver is kept) and returns its ICD file. Installs the
 * libraries it needs with apt-get when missing (root only). `say` reports each step.
 */
export function setupLavapipe(dir: string, say: (line: string) => void): string {
  const lvp = resolve(dir);
  const icd = join(lvp, ICD_FILE);
  if (existsSync(icd)) {
    say(`lavapipe is already there: ${icd}`);
    return icd;
  }
  const why = setupUnsupported();
  if (why) throw new Error(why);
  const run = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const ldconfig = execFileSync('sh', ['-c', 'ldconfig -p 2>/dev/null || /sbin/ldconfig -p'], { encoding: 'utf8' });
  const need = NEEDED_LIBS.filter(([lib]) => !ldconfig.includes(`${lib} `)).map(([, pkg]) => pkg);
  if (need.length > 0) {
    if (process.getuid?.() !== 0) throw new Error(`lavapipe needs ${need.join(' ')}: run as root, or apt-get install ${need.join(' ')} first`);
    say(`apt-get install ${need.join(' ')}`);
    run('apt-get', ['update', '-qq']);
    execFileSync('apt-get', ['install', '-y', '-qq', ...need], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  say('fetching Mesa lavapipe (mesa-vulkan-drivers) from bookworm-backports');
  // A private apt state, so that the system's sources and lists stay untouched.
  const tmp = mkdtempSync(join(tmpdir(), 'webgpu-llm-lavapipe-'));
  try {
    for (const d of ['lists/partial', 'archives/partial']) mkdirSync(join(tmp, d), { recursive: true });
    writeFileSync(join(tmp, 'sources.list'), 'deb http://deb.debian.org/debian bookworm-backports main\n');
    const o = [
      '-o', `Dir::Etc::SourceList=${join(tmp, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
      '-o', `Dir::State::Lists=${join(tmp, 'lists')}`, '-o', `Dir::Cache::Archives=${join(tmp, 'archives')}`,
      ...(process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : []),
    ];
    run('apt-get', [...o, 'update', '-qq']);
    run('apt-get', [...o, 'download', 'mesa-vulkan-drivers'], tmp);
    const deb = readdirSync(tmp).find((f) => /^mesa-vulkan-drivers_.*\.deb$/.test(f));
    if (!deb) throw new Error('apt-get download mesa-vulkan-drivers gave no .deb');
    run('dpkg', ['-x', join(tmp, deb), join(tmp, 'x')]);
    mkdirSync(lvp, { recursive: true });
    copyFileSync(join(tmp, 'x/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so'), join(lvp, 'libvulkan_lvp.so'));
    const json = { file_format_version: '1.0.0', ICD: { api_version: '1.4.305', library_path: join(lvp, 'libvulkan_lvp.so') } };
    writeFileSync(icd, `${JSON.stringify(json)}\n`);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`fetching lavapipe failed${stderr ? `: ${stderr.split('\n').at(-1)}` : `: ${(err as Error).message}`} (WebGPU without a GPU needs it; --device cpu needs nothing)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  say(`lavapipe ready: ${icd}`);
  return icd;
}
