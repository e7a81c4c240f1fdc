/**
 * Loading a model for a command: engine flags -> LLMOptions, the KV cache size from --gpu-memory-utilization,
 * progress on stderr (a bar on a terminal; otherwise one line per file, for `serve`'s logs), and the engine's
 * notices routed by --log-level.
 */
import type { DownloadProgress } from '../../../src/platform.js';
import { LLM, type LLMOptions } from '../index.js';
import type { FlagValues } from './args.js';
import { engineOptions, logLevelOf, shows, type LogLevel } from './flags.js';
import { kvCacheBytesForUtilization } from './memory.js';
import { stderrIsTTY } from './stderr.js';

/** Writes one stderr line when `level` shows at the command's --log-level. */
export type Logger = (level: LogLevel, message: string) => void;

export function makeLogger(v: FlagValues): Logger {
  const threshold = logLevelOf(v);
  return (level, message) => {
    if (shows(threshold, level)) process.stderr.write(`${message}\n`);
  };
}

/**
 * Progress of downloads and weight uploads: on a terminal a bar redrawn in place (after the first second); with
 * `lines`, otherwise, one line per file when it completes.
 */
export function progressReporter(lines: boolean): ((p: DownloadProgress) => void) | undefined {
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  if (!stderrIsTTY()) {
    if (!lines) return undefined;
    return (p) => {
      if (p.loadedBytes >= p.totalBytes) process.stderr.write(`webgpu-llm: ${p.phase ?? 'download'} ${p.file} ${mb(p.totalBytes)} MiB done\n`);
    };
  }
  const start = performance.now();
  let last = 0;
  return (p) => {
    const now = performance.now();
    const done = p.loadedBytes >= p.totalBytes;
    if (now - start < 1000 || (now - last < 100 && !done)) return;
    last = now;
    const frac = p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : 1;
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    process.stderr.write(`\r${p.phase ?? 'download'} ${p.file} [${bar}] ${mb(p.loadedBytes)}/${mb(p.totalBytes)} MiB${done ? '\n' : ''}`);
  };
}

/**
 * The engine's notices by level: the sampling defaults read from generation_config.json are a debug notice (vLLM
 * logs them at info; here a normal run stays quiet), anything else a warning.
 */
export function engineLog(log: Logger): (message: string) => void {
  return (m) => log(/default sampling parameters/.test(m) ? 'debug' : 'warning', m);
}

/** LLMOptions for the command's flags, with the KV cache sized from --gpu-memory-utilization when given. */
export async function llmOptions(v: FlagValues, model: string | undefined, log: Logger): Promise<LLMOptions> {
  const o = engineOptions(v, model);
  const util = v['gpu-memory-utilization'] as number | undefined;
  if (util !== undefined && o.numGpuBlocksOverride === undefined) {
    const { bytes, note } = await kvCacheBytesForUtilization(util, o);
    log('info', `webgpu-llm: ${note}`);
    o.kvCacheMemoryBytes = bytes;
  }
  return o;
}

/** Loads the model the flags name; `progressLines`: report each loaded file even off a terminal (serve). */
export async function loadModel(v: FlagValues, model: string | undefined, log: Logger, progressLines = false): Promise<LLM> {
  const o = await llmOptions(v, model, log);
  const t0 = performance.now();
  if (progressLines) log('info', `webgpu-llm: loading ${model ?? 'the embedded tinystories-656K'}`);
  const llm = await LLM.create({ ...o, onProgress: progressReporter(progressLines), log: engineLog(log) }).catch((err: unknown) => {
    // --device webgpu on a machine without one: say how to get an adapter, or to do without.
    if (err instanceof Error && /no adapter available/.test(err.message)) {
      throw new Error(`${err.message}: run 'npx webgpu-llm setup' (a CPU Vulkan driver, Linux x86-64) or use --device cpu; 'npx webgpu-llm doctor' shows what this machine has`);
    }
    throw err;
  });
  if (progressLines) {
    const l = llm.engine.runner.limits;
    log('info', `webgpu-llm: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s (max model len ${l.maxModelLen}, KV cache ${l.numBlocks} blocks of ${l.blockSize} tokens)`);
  }
  return llm;
}
