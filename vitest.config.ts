import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vitest/config';
import { skipWithoutSharedModels } from './test/helpers/shared-models.js';

// Mirrors tsup's loaders: `.wgsl` -> source text, `.wasm` -> embedded bytes.
function assets(): Plugin {
  return {
    name: 'webgpu-llm-assets',
    enforce: 'pre',
    load(id) {
      const path = id.split('?')[0];
      if (path.endsWith('.wgsl')) return `export default ${JSON.stringify(readFileSync(path, 'utf8'))};`;
      if (path.endsWith('.wasm')) {
        const b64 = readFileSync(path).toString('base64');
        return `export default Uint8Array.from(atob(${JSON.stringify(b64)}), (c) => c.charCodeAt(0));`;
      }
      return null;
    },
    // Test files that need ../shared/models become one skipped test saying so where it is absent.
    transform(code, id) {
      return skipWithoutSharedModels(id.split('?')[0], code);
    },
  };
}

export default defineConfig({
  plugins: [assets()],
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One WebGPU device per process: files that touch the GPU run one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
