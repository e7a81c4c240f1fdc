/**
 * The CLI's flag parser: one table per command (name, kind, help) from which parsing, validation and `--help` all
 * come, so that a flag cannot exist without its help text. Every value is checked here, before any model loads.
 *
 *   --flag VALUE | --flag=VALUE    string, number, integer, size, choice flags
 *   --flag | --no-flag             boolean flags (--no- only where `negatable`)
 *   --max_model_len                underscores read as dashes (vLLM's parser does the same)
 *
 * Errors are UsageError (exit 2): "unknown flag --max-token; did you mean --max-tokens?".
 */

/** A command line mistake: the CLI prints it with the command's usage line and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagKind = 'string' | 'number' | 'int' | 'size' | 'choice' | 'boolean';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  /** One or more sentences; wrapped in --help. */
  help: string;
  /** Placeholder in help (`--port N`); default by kind. */
  metavar?: string;
  /** For 'choice': the accepted values. */
  choices?: readonly string[];
  /** Inclusive bounds for number / int / size. */
  min?: number;
  max?: number;
  /** Bounds exclusive below (e.g. utilization in (0, 1]). */
  minExclusive?: boolean;
  /** Repeatable: the value is a list. */
  multiple?: boolean;
  /** Boolean flags: `--no-NAME` sets false. */
  negatable?: boolean;
  /** Other spellings accepted (vLLM's names for the same thing). */
  aliases?: readonly string[];
  /** Shown in help as "(default X)". */
  defaultText?: string;
}

export interface CommandSpec {
  name: string;
  /** Usage after `webgpu-llm NAME`, e.g. 'PROMPT [flags]'. */
  usage: string;
  /** Paragraph shown under the usage line. */
  summary: string;
  /** Positional argument names and help. */
  positionals?: { name: string; help: string }[];
  minPositionals?: number;
  maxPositionals?: number;
  flags: FlagSpec[];
  /** Lines shown at the end of help (examples). */
  examples?: string[];
}

/** Parsed values: camelCase is not applied; keys are the flags' names. */
export type FlagValues = Record<string, string | number | boolean | (string | number)[] | undefined>;

export interface Parsed {
  values: FlagValues;
  positionals: string[];
  help: boolean;
}

const UNITS: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * A byte count: `1073741824`, `512M`/`512MiB` (binary) or `512m`/`512MB` (decimal), as vLLM's human-readable
 * integers (1k = 1000, 1K = 1024); NaN when malformed.
 */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kmgtKMGT])(i?)(B?))?$/.exec(text.trim());
  if (!m) return NaN;
  const [, num, unit, bin, b] = m;
  if (!unit) return Number(num);
  // 'MiB' is binary whatever the case; 'MB' is decimal; bare 'M' binary, bare 'm' decimal.
  const factor = bin ? UNITS[unit.toUpperCase()] : b ? UNITS[unit.toLowerCase()] : UNITS[unit];
  return Math.round(Number(num) * factor);
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The closest known name (within a third of its length, or one that starts with `name`), or undefined. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(name) || name.startsWith(k) ? Math.min(1, distance(name, k)) : distance(name, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.ceil(name.length / 3)) ? best : undefined;
}

function allNames(f: FlagSpec): string[] {
  return [f.name, ...(f.aliases ?? [])];
}

/** Parses `argv` for `spec`; throws UsageError on any unknown flag, missing value or invalid value. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const f of spec.flags) for (const n of allNames(f)) byName.set(n, f);
  const values: FlagValues = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-' || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown flag ${arg}${hint(arg.replace(/^-+/, ''), spec)}`);
    const eq = arg.indexOf('=');
    const raw = (eq < 0 ? arg.slice(2) : arg.slice(2, eq)).replace(/_/g, '-');
    let inline = eq < 0 ? undefined : arg.slice(eq + 1);
    let flag = byName.get(raw);
    let negated = false;
    if (!flag && raw.startsWith('no-')) {
      const f = byName.get(raw.slice(3));
      if (f?.kind === 'boolean' && f.negatable) {
        flag = f;
        negated = true;
      }
    }
    if (!flag) throw new UsageError(`unknown flag --${raw}${hint(raw, spec)}`);
    if (flag.kind === 'boolean') {
      if (inline !== undefined) {
        if (!['true', 'false', '1', '0'].includes(inline)) throw new UsageError(`--${flag.name} takes no value (got '${inline}')`);
        values[flag.name] = (inline === 'true' || inline === '1') !== negated;
      } else values[flag.name] = !negated;
      continue;
    }
    if (inline === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`--${flag.name} needs a value (${metavar(flag)})`);
      inline = next;
      i++;
    }
    const value = convert(flag, inline);
    if (flag.multiple) values[flag.name] = [...((values[flag.name] as (string | number)[] | undefined) ?? []), value];
    else values[flag.name] = value;
  }
  if (!help) {
    const min = spec.minPositionals ?? 0;
    const max = spec.maxPositionals ?? 0;
    const names = (spec.positionals ?? []).map((p) => p.name).join(' ');
    if (positionals.length < min) throw new UsageError(`${spec.name} needs ${names}`);
    if (positionals.length > max) {
      const extra = positionals[max];
      throw new UsageError(max === 0 ? `${spec.name} takes no arguments (got '${extra}')` : `${spec.name} takes ${names} (unexpected '${extra}'; quote a prompt with spaces)`);
    }
  }
  return { values, positionals, help };
}

function hint(name: string, spec: CommandSpec): string {
  const known = spec.flags.flatMap((f) => [...allNames(f), ...(f.kind === 'boolean' && f.negatable ? [`no-${f.name}`] : [])]);
  const c = closest(name, [...known, 'help']);
  return c ? `; did you mean --${c}?` : `; see 'webgpu-llm ${spec.name} --help'`;
}

function metavar(f: FlagSpec): string {
  if (f.metavar) return f.metavar;
  if (f.kind === 'choice') return f.choices!.join('|');
  if (f.kind === 'int') return 'N';
  if (f.kind === 'number') return 'X';
  if (f.kind === 'size') return 'BYTES';
  return 'VALUE';
}

function convert(f: FlagSpec, text: string): string | number {
  if (f.kind === 'string') {
    if (text === '') throw new UsageError(`--${f.name} needs a non-empty value`);
    return text;
  }
  if (f.kind === 'choice') {
    if (!f.choices!.includes(text)) throw new UsageError(`--${f.name} must be one of ${f.choices!.join(', ')}; got '${text}'`);
    return text;
  }
  const n = f.kind === 'size' ? parseSize(text) : text.trim() === '' ? NaN : Number(text);
  const what = f.kind === 'int' ? 'an integer' : f.kind === 'size' ? "a byte count (e.g. 536870912, 512M, 2GiB)" : 'a number';
  if (!Number.isFinite(n) || (f.kind !== 'number' && !Number.isInteger(n))) throw new UsageError(`--${f.name} expects ${what}, got '${text}'`);
  const low = f.min !== undefined && (f.minExclusive ? n <= f.min : n < f.min);
  if (low || (f.max !== undefined && n > f.max)) {
    const lo = f.min === undefined ? '' : f.minExclusive ? `more than ${f.min}` : `at least ${f.min}`;
    const hi = f.max === undefined ? '' : `at most ${f.max}`;
    throw new UsageError(`--${f.name} must be ${[lo, hi].filter(Boolean).join(' and ')}, got ${text}`);
  }
  return n;
}

/** Wraps `text` to `width` columns, each line after the first indented by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** The usage line of a command. */
export function usageLine(spec: CommandSpec): string {
  return `usage: webgpu-llm ${spec.name} ${spec.usage}`;
}

/** `webgpu-llm CMD --help`: usage, summary, positionals, every flag with its help, examples. */
export function formatHelp(spec: CommandSpec, columns = 100): string {
  const width = Math.max(60, Math.min(columns, 110));
  const col = 30;
  const out = [usageLine(spec), '', wrap(spec.summary, width, 0), ''];
  const row = (left: string, help: string) => {
    const body = wrap(help, width - col, col);
    out.push(left.length + 4 <= col ? `  ${left.padEnd(col - 2)}${body}` : `  ${left}\n${' '.repeat(col)}${body}`);
  };
  if (spec.positionals?.length) {
    out.push('arguments:');
    for (const p of spec.positionals) row(p.name, p.help);
    out.push('');
  }
  out.push('flags:');
  for (const f of spec.flags) {
    const names = f.kind === 'boolean' ? (f.negatable ? `--[no-]${f.name}` : `--${f.name}`) : `--${f.name} ${metavar(f)}`;
    const oneOf = f.kind === 'choice' && f.metavar ? `one of ${f.choices!.join(', ')}` : '';
    const extra = [oneOf, f.aliases?.length ? `also ${f.aliases.map((a) => `--${a}`).join(', ')}` : '', f.multiple ? 'repeatable' : '', f.defaultText ? `default ${f.defaultText}` : '']
      .filter(Boolean)
      .join('; ');
    row(names, extra ? `${f.help} (${extra})` : f.help);
  }
  row('-h, --help', 'show this help and exit');
  if (spec.examples?.length) out.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`));
  return `${out.join('\n')}\n`;
}
