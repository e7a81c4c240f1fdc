/**
 * The grammar engine: xgrammar (vLLM's default structured-output backend), as `@mlc-ai/web-xgrammar` (C++ built to
 * WebAssembly, the wasm embedded in its one JS file). The core imports it lazily, only when a request first asks for
 * structured outputs. A platform whose module system cannot import the package as is sets a loader: the package is
 * a UMD file in a `"type": "module"` package, so Node's ESM loader refuses it (it reads `require` and `__filename`)
 * and bindings/node evaluates it as CommonJS instead; bundlers (the browser build) import it as CommonJS already.
 *
 * xgrammar reports a bad schema or grammar by printing `[FATAL] ...` through the module's `printErr`
 * (console.error, bound when the module starts) and aborting the call. `loadXGrammar` starts the module with
 * console.error routed through a sink, so `captureErrors` can turn those lines into the error's message instead of
 * noise on the console.
 *
 * @example
 *   const xg = await loadXGrammar();
 *   const compiled = await captureErrors(() => compiler.compileJSONSchema(schema)); // throws GrammarError
 */
import type * as XGrammar from '@mlc-ai/web-xgrammar';

export type XGrammarModule = typeof XGrammar;

let loader: () => Promise<XGrammarModule> = async () => {
  const m = (await import('@mlc-ai/web-xgrammar')) as XGrammarModule & { default?: XGrammarModule };
  // A bundler's CommonJS interop puts the exports on `default`; a browser importing the UMD file as an ES module
  // gets none and finds them on globalThis.xgrammar.
  if (m.GrammarCompiler) return m;
  const g = m.default ?? (globalThis as { xgrammar?: XGrammarModule }).xgrammar;
  if (!g?.GrammarCompiler) throw new Error('@mlc-ai/web-xgrammar loaded without its exports');
  return g;
};

/** Sets how the platform loads @mlc-ai/web-xgrammar (bindings/node does; the default is a dynamic import). */
export function setXGrammarLoader(load: () => Promise<XGrammarModule>): void {
  loader = load;
  loaded = null;
}

/** A grammar the engine refused (bad schema, regex or EBNF); the message is xgrammar's. */
export class GrammarError extends Error {
  override name = 'GrammarError';
}

let loaded: Promise<XGrammarModule> | null = null;
/** Lines the module printed during the current captureErrors call (null: none running, print through). */
let sink: string[] | null = null;

/** Loads and starts xgrammar once per realm. */
export function loadXGrammar(): Promise<XGrammarModule> {
  loaded ??= (async () => {
    const xg = await loader();
    // The module binds console.error when it starts (the first call that needs it): start it now, through a sink.
    const original = console.error;
    const routed = (...args: unknown[]) => (sink ? sink.push(args.map(String).join(' ')) : original.apply(console, args));
    console.error = routed;
    try {
      (await xg.Grammar.builtinJSONGrammar()).dispose();
    } finally {
      if (console.error === routed) console.error = original;
    }
    return xg;
  })();
  loaded.catch(() => (loaded = null));
  return loaded;
}

/** Runs an xgrammar call; an abort becomes a GrammarError carrying the `[FATAL]` line it printed. */
export async function captureErrors<T>(what: string, f: () => T | Promise<T>): Promise<T> {
  const lines: string[] = [];
  const outer = sink;
  sink = lines;
  try {
    return await f();
  } catch (e) {
    const fatal = lines.find((l) => l.includes('[FATAL]') || l.includes('Error'));
    // "[FATAL] /path/to/json_schema_converter.cc:902: Unsupported type "objekt"" -> "Unsupported type "objekt"".
    const reason = fatal?.replace(/^.*?\[FATAL\]\s*/, '').replace(/^\S+\.(cc|h):\d+:\s*/, '') ?? (e instanceof Error ? e.message : String(e));
    throw new GrammarError(`${what}: ${reason}`);
  } finally {
    sink = outer;
  }
}
