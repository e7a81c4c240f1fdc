/**
 * Precompiled WebAssembly modules, for runtimes that forbid compiling wasm from bytes at run time (Cloudflare's
 * workerd, Vercel's edge): there a `.wasm` file imported by the worker is a `WebAssembly.Module`, and the platform
 * binding (bindings/edge) hands it here. Elsewhere nothing is set and the bytes the bundler embedded are compiled.
 *
 * @example
 *   import core from 'webgpu-llm/wasm/core.wasm'; // a WebAssembly.Module in workerd
 *   setWasmModules({ core });
 */

/** The library's modules by name: core.wasm (tokenizer loops) and cpu.wasm (the single-threaded CPU kernels). */
export interface WasmModules {
  core?: WebAssembly.Module;
  cpu?: WebAssembly.Module;
}

const modules: WasmModules = {};

/** Sets precompiled modules (later calls replace the names they give). */
export function setWasmModules(given: WasmModules): void {
  for (const [name, m] of Object.entries(given) as [keyof WasmModules, WebAssembly.Module | undefined][]) {
    if (m === undefined) continue;
    // instanceof fails across realms (edge-runtime's vm context), so check the module's shape instead.
    if (!isModule(m)) {
      throw new TypeError(`setWasmModules: '${name}' must be a WebAssembly.Module (a precompiled ${name}.wasm), got ${Object.prototype.toString.call(m)}`);
    }
    modules[name] = m;
  }
}

function isModule(m: unknown): m is WebAssembly.Module {
  try {
    WebAssembly.Module.exports(m as WebAssembly.Module);
    return true;
  } catch {
    return false;
  }
}

/**
 * Instantiates module `name`: the precompiled one when set, else `bytes` (compiled here). Returns the instance's
 * exports either way.
 */
export async function instantiateWasm(name: keyof WasmModules, bytes: Uint8Array, imports: WebAssembly.Imports): Promise<WebAssembly.Exports> {
  const m = modules[name];
  if (m) return (await WebAssembly.instantiate(m, imports)).exports;
  try {
    return (await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>, imports)).instance.exports;
  } catch (err) {
    // workerd: "Wasm code generation disallowed by embedder"; the fix is a precompiled module.
    if (err instanceof Error && /disallowed|not allowed|CompileError.*embedder/i.test(err.message)) {
      throw new Error(`${name}.wasm cannot be compiled from bytes in this runtime (${err.message}): pass the precompiled module, e.g. edgePlatform({ wasm: { ${name} } }) of webgpu-llm/edge (see README "Runtimes")`);
    }
    throw err;
  }
}
