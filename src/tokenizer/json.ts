/** Reading tokenizer.json and tokenizer_config.json fields with errors that name the file and the field. */
import { ModelFileError } from '../errors';

export type Json = Record<string, unknown>;

/** Where a JSON value came from, for error messages: the file (prefixed by the source's name) and the path. */
export interface JsonAt {
  readonly file: string;
  readonly path: string;
}

export function fail(at: JsonAt, problem: string): never {
  throw new ModelFileError(at.file, at.path ? `${at.path}: ${problem}` : problem);
}

export function child(at: JsonAt, key: string | number): JsonAt {
  return { file: at.file, path: typeof key === 'number' ? `${at.path}[${key}]` : at.path ? `${at.path}.${key}` : key };
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function expectObject(v: unknown, at: JsonAt): Json {
  if (!isObject(v)) fail(at, `expected an object, got ${describe(v)}`);
  return v;
}

export function expectArray(v: unknown, at: JsonAt): unknown[] {
  if (!Array.isArray(v)) fail(at, `expected an array, got ${describe(v)}`);
  return v;
}

export function expectString(v: unknown, at: JsonAt): string {
  if (typeof v !== 'string') fail(at, `expected a string, got ${describe(v)}`);
  return v;
}

/** A field that may be absent or null, else must be a string. */
export function optString(obj: Json, key: string, at: JsonAt): string | null {
  const v = obj[key];
  return v === undefined || v === null ? null : expectString(v, child(at, key));
}

export function optBool(obj: Json, key: string, fallback: boolean): boolean {
  const v = obj[key];
  return typeof v === 'boolean' ? v : fallback;
}

export function optInt(obj: Json, key: string, fallback: number, at: JsonAt): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(child(at, key), `expected a non-negative integer, got ${describe(v)}`);
  return v;
}

/** The "type" tag of a component, for `switch`. */
export function typeOf(obj: Json, at: JsonAt): string {
  return expectString(obj.type, child(at, 'type'));
}

export function unsupported(obj: Json, at: JsonAt, kind: string): never {
  fail(at, `unsupported ${kind} type "${String(obj.type)}"`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return typeof v;
}
