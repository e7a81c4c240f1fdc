/**
 * A quiet stderr. Dawn prints its adapter warnings ("Warning: Vulkan shaderUniform*ArrayDynamicIndexing
 * required", "maxDynamic...BuffersPerPipelineLayout artificially reduced") from native code straight to file
 * descriptor 2, with no callback, toggle or environment variable to silence them, and a Node process cannot
 * redirect its own descriptor. So a command that opens the GPU runs as a child process whose stderr passes through
 * DawnLogFilter; stdin and stdout are the child's own (pipes and terminals work as without it). With
 * --log-level debug (or trace) the command runs in-process and Dawn's lines show.
 */
import { spawn } from 'node:child_process';

/** Set in the child's environment; the child then runs the command itself. */
export const CHILD_ENV = 'WEBGPU_LLM_CLI_CHILD';
/** Tells the child that the parent's stderr is a terminal (progress bars), and its width. */
export const TTY_ENV = 'WEBGPU_LLM_STDERR_TTY';

/** True when stderr is a terminal, seen through the parent when this is the filtered child. */
export function stderrIsTTY(): boolean {
  return process.stderr.isTTY === true || process.env[TTY_ENV] !== undefined;
}

/** Terminal width for help text and progress bars. */
export function stderrColumns(): number {
  return process.stderr.columns ?? (Number(process.env[TTY_ENV]) || 100);
}

const WARNING = 'Warning: ';

/**
 * Drops Dawn's log blocks from a text stream: a line starting `Warning: `, then any ` - While ...` and
 * `    at ...` lines, then one empty line. Everything else passes, partial lines (progress bars redrawn with `\r`)
 * at once.
 *
 * @example
 * const f = new DawnLogFilter();
 * f.push('Warning: x\n - While y\n    at z\n\nreal\n'); // 'real\n'
 */
export class DawnLogFilter {
  private pending = '';
  /** Inside a Dawn block (after its Warning line). */
  private inBlock = false;
  /** The current line's start already passed (partial output), so the rest of the line passes too. */
  private midLine = false;

  push(chunk: string): string {
    this.pending += chunk;
    let out = '';
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      out += this.line(line);
    }
    // A partial line: hold it only while it may still become a Dawn line (or a block's indented continuation).
    const p = this.pending;
    if (p !== '' && this.inBlock && !p.startsWith(' ')) this.inBlock = false;
    if (p !== '' && !this.midLine && !this.inBlock && !WARNING.startsWith(p) && !p.startsWith(WARNING)) {
      out += p;
      this.pending = '';
      this.midLine = true;
    } else if (p !== '' && this.midLine) {
      out += p;
      this.pending = '';
    }
    return out;
  }

  /** What is still held at the end of the stream. */
  flush(): string {
    const rest = (this.inBlock && this.pending.startsWith(' ')) || this.pending.startsWith(WARNING) ? '' : this.pending;
    this.pending = '';
    return rest;
  }

  private line(line: string): string {
    if (this.midLine) {
      this.midLine = false;
      return `${line}\n`;
    }
    if (line.startsWith(WARNING)) {
      this.inBlock = true;
      return '';
    }
    if (this.inBlock) {
      if (line.startsWith(' - ') || /^\s+at /.test(line)) return '';
      this.inBlock = false;
      if (line === '') return '';
    }
    return `${line}\n`;
  }
}

/**
 * Runs this CLI again as a child with stderr filtered; resolves with its exit code. SIGINT / SIGTERM sent to this
 * process are passed on (a terminal's Ctrl-C reaches both; the child handles it once).
 */
export function runFiltered(argv: readonly string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: '1' };
  if (process.stderr.isTTY) env[TTY_ENV] = String(process.stderr.columns ?? 100);
  const child = spawn(process.execPath, [...process.execArgv, ...argv], { stdio: ['inherit', 'inherit', 'pipe'], env });
  const filter = new DawnLogFilter();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    const text = filter.push(chunk);
    if (text) process.stderr.write(text);
  });
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null) child.kill(signal);
  };
  const onTerm = forward('SIGTERM');
  // Ctrl-C on a terminal reaches the child too (same process group); passing it on again would count twice.
  const onInt = () => {
    if (!process.stdin.isTTY && !process.stderr.isTTY) forward('SIGINT')();
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      const rest = filter.flush();
      if (rest) process.stderr.write(rest);
      resolve(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1));
    });
  });
}
