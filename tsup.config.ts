import { copyFileSync, mkdirSync } from 'node:fs';
import { defineConfig } from 'tsup';

const BENCH_PEERS = ['node-llama-cpp', 'playwright-core', '@wllama/wllama'];
const loader = { '.wgsl': 'text', '.wasm': 'binary' } as const;
// The declarations name WebGPU's types (GPUDevice, ...): a consumer's compiler finds them through @webgpu/types, a
// dependency of the package, without listing it in its own tsconfig.
const dtsBanner = '/// <reference types="@webgpu/types" />';

export default defineConfig([
  {
    // Node: the isomorphic core plus the Dawn/fs bindings and the CLI.
    entry: { index: 'bindings/node/index.ts', cli: 'bindings/node/cli.ts', server: 'bindings/node/server.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    dts: { entry: { index: 'bindings/node/index.ts', server: 'bindings/node/server.ts' }, banner: dtsBanner },
    sourcemap: true,
    clean: true,
    loader,
    external: ['webgpu'],
  },
  {
    // Browser: the same core with navigator.gpu and fetch; no Node built-ins.
    // server-web: the platform-free server (createApp) for workers, sharing this build's chunks with browser.js.
    // edge: the same for isolates without a filesystem (workerd, edge-runtime): models as bytes, wasm precompiled.
    entry: { browser: 'bindings/browser/index.ts', 'server-web': 'src/server/index.ts', edge: 'bindings/edge/index.ts' },
    format: ['esm'],
    platform: 'browser',
    target: 'es2022',
    dts: { banner: dtsBanner },
    sourcemap: true,
    loader,
    // A page cannot resolve bare module names: bundle the template engine and the schema library in.
    // xgrammar (1.1 MB, its wasm inside) is imported dynamically: its own chunk, loaded on the first constrained request.
    noExternal: ['@huggingface/jinja', 'zod', '@mlc-ai/web-xgrammar'],
    // The wasm modules as files too (webgpu-llm/wasm/*.wasm): isolates that cannot compile wasm from bytes import
    // them precompiled (bindings/edge).
    async onSuccess() {
      mkdirSync('dist/wasm', { recursive: true });
      for (const name of ['core', 'cpu', 'cpu-relaxed']) copyFileSync(`build/${name}.wasm`, `dist/wasm/${name}.wasm`);
    },
    // xgrammar's Emscripten loader names Node's `url` and `module` on a branch only Node takes: empty modules here,
    // so the bundle imports nothing from outside.
    esbuildPlugins: [
      {
        name: 'node-builtins-empty',
        setup(build) {
          build.onResolve({ filter: /^(url|module)$/ }, (args) => ({ path: args.path, namespace: 'empty' }));
          build.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export default {};', loader: 'js' }));
        },
      },
    ],
  },
  {
    // Benchmarks, bundled so that a GPU machine needs only node, dawn.node and this folder.
    entry: { generate: 'bench/generate.ts', engine: 'bench/engine.ts', structured: 'bench/structured.ts', sampling: 'bench/sampling.ts', sampler: 'bench/sampler.ts', ops: 'bench/ops.ts', 'quant-ops': 'bench/quant-ops.ts', goldens: 'bench/goldens.ts', 'mma-peak': 'bench/mma-peak.ts', 'prompt-attention': 'bench/prompt-attention.ts', moe: 'bench/moe.ts', cpu: 'bench/cpu.ts', 'cpu-compare': 'bench/cpu-compare.ts', 'cpu-memory': 'bench/cpu-memory.ts', 'spec-decode': 'bench/spec-decode.ts' },
    outDir: 'build/bench',
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    loader,
    // The peers of bench/cpu-compare.ts (native addons, a browser driver) load from node_modules at run time.
    external: ['webgpu', ...BENCH_PEERS],
    // Everything else inside: the GPU machine has no node_modules.
    noExternal: [/^(?!webgpu$|node-llama-cpp$|playwright-core$|@wllama\/wllama)/],
    clean: true,
  },
]);
