/**
 * The `webgpu-llm` command: dispatch, top-level help and version. Commands that open the GPU run through
 * stderr.ts's filtered child (Dawn's adapter warnings hidden) unless --log-level is debug or trace.
 *
 * Exit codes: 0 done (and --help, --version), 1 a runtime failure (model not found, ...), 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../index.js';
import { formatHelp, parseCommand, usageLine, UsageError, closest, type CommandSpec } from './args.js';
import { BENCH_HELP, BENCH_SUBCOMMANDS, benchCommand } from './bench.js';
import { CHAT, chatCommand } from './chat.js';
import { DEMO, demoCommand } from './demo.js';
import { DOCTOR, doctorCommand } from './doctor.js';
import { GENERATE, generateCommand } from './generate.js';
import { SERVE, serveCommand } from './serve.js';
import { SETUP, setupCommand } from './setup.js';
import { CHILD_ENV, runFiltered, stderrColumns } from './stderr.js';

interface Command {
  spec: CommandSpec | null;
  run: (argv: string[]) => Promise<void>;
  /** Opens the GPU in this process (stderr filtered). */
  gpu: boolean;
  line: string;
}

const COMMANDS: Record<string, Command> = {
  generate: { spec: GENERATE, run: generateCommand, gpu: true, line: 'continue a prompt, streaming to stdout' },
  chat: { spec: CHAT, run: chatCommand, gpu: true, line: "chat in the terminal with the model's chat template" },
  serve: { spec: SERVE, run: serveCommand, gpu: true, line: 'an OpenAI-compatible server (vLLM\'s `vllm serve`)' },
  bench: { spec: null, run: benchCommand, gpu: true, line: 'benchmarks: latency, throughput, serve (any OpenAI-compatible URL)' },
  demo: { spec: DEMO, run: demoCommand, gpu: false, line: 'serve the browser demo page' },
  doctor: { spec: DOCTOR, run: doctorCommand, gpu: true, line: "backends, WebGPU adapters (features, limits), and what device 'auto' picks" },
  setup: { spec: SETUP, run: setupCommand, gpu: false, line: 'fetch a CPU Vulkan driver (lavapipe) for WebGPU without a GPU (optional)' },
};

export function version(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

const TOP_HELP = `usage: webgpu-llm COMMAND [flags]      (webgpu-llm COMMAND --help for its flags)

vLLM's API on WebGPU: generate text, chat, serve OpenAI's API, benchmark.

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}${c.line}`)
  .join('\n')}

flags:
  -h, --help       show this help
  -V, --version    print the version

Without --model, commands use the embedded tinystories-656K (656K parameters, English stories), so every command
runs offline at once. Without a WebGPU adapter the model runs on the CPU backend (WebAssembly); 'webgpu-llm doctor'
tells what this machine has. Models: a Hugging Face folder or repo id (org/name), a .gguf file or org/name:Q4_K_M.
`;

/** The spec whose usage line an error of `argv` should show. */
function specOf(argv: readonly string[]): CommandSpec | null {
  const [command, sub] = argv;
  if (command === 'bench') return BENCH_SUBCOMMANDS[sub as keyof typeof BENCH_SUBCOMMANDS] ?? null;
  return COMMANDS[command]?.spec ?? null;
}

/** Help text for `argv` when it asks for help (--help anywhere before `--`), else null. */
function helpFor(argv: readonly string[]): string | null {
  const spec = specOf(argv);
  if (!spec) return null;
  const rest = argv.slice(argv[0] === 'bench' ? 2 : 1);
  try {
    if (!parseCommand(spec, rest).help) return null;
  } catch {
    // A bad flag beside --help: show the help anyway.
    const end = rest.indexOf('--');
    if (!(end < 0 ? rest : rest.slice(0, end)).some((a) => a === '--help' || a === '-h')) return null;
  }
  return formatHelp(spec, stderrColumns());
}

export async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const spec = command === 'help' && argv[1] ? specOf(argv.slice(1)) : null;
    if (command === 'help' && argv[1] && !spec && argv[1] !== 'bench') throw new UsageError(`unknown command '${argv[1]}'`);
    process.stdout.write(spec ? formatHelp(spec, stderrColumns()) : command === 'help' && argv[1] === 'bench' ? BENCH_HELP : TOP_HELP);
    return 0;
  }
  if (command === '--version' || command === '-V' || command === '-v') {
    process.stdout.write(`webgpu-llm ${version()}\n`);
    return 0;
  }
  const c = COMMANDS[command];
  if (!c) {
    const hint = closest(command, Object.keys(COMMANDS));
    throw new UsageError(command.startsWith('-') ? `unknown flag ${command}; see 'webgpu-llm --help'` : `unknown command '${command}'${hint ? `; did you mean '${hint}'?` : ` (one of ${Object.keys(COMMANDS).join(', ')})`}`);
  }
  const help = helpFor(argv);
  if (help !== null) {
    process.stdout.write(help);
    return 0;
  }
  const debug = argv.some((a, i) => /^--log[-_]level=(debug|trace)$/.test(a) || (/^--log[-_]level$/.test(a) && /^(debug|trace)$/.test(argv[i + 1] ?? '')));
  if (c.gpu && !debug && process.env[CHILD_ENV] === undefined) {
    // Validate the flags here first, so that a usage error costs no child process.
    const spec = specOf(argv);
    if (spec) parseCommand(spec, argv.slice(command === 'bench' ? 2 : 1));
    if (!(command === 'bench' && argv[1] === 'serve')) return runFiltered([process.argv[1], ...argv]);
  }
  await c.run(argv.slice(1));
  return 0;
}

/** Prints an error the way the CLI reports it and returns the exit code. */
export function report(err: unknown, argv: readonly string[]): number {
  if (err instanceof UsageError) {
    const spec = specOf(argv);
    process.stderr.write(`webgpu-llm: ${err.message}\n${spec ? `${usageLine(spec)}\n(webgpu-llm ${spec.name} --help explains every flag)\n` : ''}`);
    return 2;
  }
  process.stderr.write(`webgpu-llm: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
}
