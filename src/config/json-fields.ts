/**
 * Typed reads of JSON config fields. Every failure is a ModelFileError that names the file, the key and what is
 * wrong with it, e.g. `config.json: "num_attention_heads" must be a positive integer, got "32"`.
 */
import { ModelFileError } from '../errors.js';

export type JsonObject = Record<string, unknown>;

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Reads fields of one JSON object; `where` prefixes nested keys in messages (e.g. `rope_scaling.`). */
export class JsonFields {
  constructor(
    readonly obj: JsonObject,
    readonly file: string,
    readonly where = '',
  ) {}

  /** Parses `text` as a JSON object, or throws naming the file. */
  static parse(json: unknown, file: string): JsonFields {
    if (typeof json === 'string') {
      try {
        json = JSON.parse(json);
      } catch (e) {
        throw new ModelFileError(file, `is not valid JSON (${(e as Error).message})`);
      }
    }
    if (!isObject(json)) throw new ModelFileError(file, `must hold a JSON object, got ${show(json)}`);
    return new JsonFields(json, file);
  }

  fail(key: string, problem: string): never {
    throw new ModelFileError(this.file, `"${this.where}${key}" ${problem}`);
  }

  /** True when the key is present and not null (HF writes null for "use the default"). */
  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  /** The first of `keys` that is present and not null, or undefined. */
  firstKey(...keys: string[]): string | undefined {
    return keys.find((k) => this.has(k));
  }

  private value(key: string, fallback: unknown): unknown {
    if (this.has(key)) return this.obj[key];
    if (fallback === undefined) this.fail(key, 'is required but missing');
    return fallback;
  }

  num(key: string, fallback?: number): number {
    const v = this.value(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `must be a finite number, got ${show(v)}`);
    return v;
  }

  positiveNum(key: string, fallback?: number): number {
    const v = this.num(key, fallback);
    if (!(v > 0)) this.fail(key, `must be positive, got ${v}`);
    return v;
  }

  /** A positive integer (sizes, counts). */
  int(key: string, fallback?: number): number {
    const v = this.value(key, fallback);
    if (!Number.isSafeInteger(v) || (v as number) <= 0) this.fail(key, `must be a positive integer, got ${show(v)}`);
    return v as number;
  }

  /** A non-negative integer or null/absent (token ids). */
  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    if (!Number.isSafeInteger(v) || (v as number) < 0) this.fail(key, `must be a token id (integer >= 0), got ${show(v)}`);
    return v as number;
  }

  /** A token id or a list of them (eos_token_id); absent/null gives []. */
  tokenIds(key: string): number[] {
    if (!this.has(key)) return [];
    const v = this.obj[key];
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) {
      if (!Number.isSafeInteger(id) || id < 0) this.fail(key, `must be a token id or a list of them, got ${show(v)}`);
    }
    return [...new Set(list as number[])];
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.value(key, fallback);
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${show(v)}`);
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.value(key, fallback);
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${show(v)}`);
    return v;
  }

  numList(key: string): number[] {
    const v = this.value(key, undefined);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      this.fail(key, `must be a list of numbers, got ${show(v)}`);
    }
    return v as number[];
  }

  /** A nested object (absent/null gives null). */
  object(key: string): JsonFields | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    if (!isObject(v)) this.fail(key, `must be an object, got ${show(v)}`);
    return new JsonFields(v, this.file, `${this.where}${key}.`);
  }

  /** Optional number: absent/null gives undefined. */
  optNum(key: string): number | undefined {
    return this.has(key) ? this.num(key) : undefined;
  }
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
