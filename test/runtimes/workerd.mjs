// A Cloudflare worker (workerd through miniflare): .wasm imports are precompiled WebAssembly.Module objects, the
// safetensors a Data module (ArrayBuffer), the JSON files Text modules, as wrangler's module rules give them.
import core from './wasm/core.wasm';
import cpu from './wasm/cpu.wasm';
import config from './model/config.json';
import generationConfig from './model/generation_config.json';
import weights from './model/model.safetensors';
import specialTokens from './model/special_tokens_map.json';
import tokenizer from './model/tokenizer.json';
import tokenizerConfig from './model/tokenizer_config.json';
import { edgeApp } from './edge-app.mjs';

const handle = edgeApp({
  wasm: { core, cpu },
  model: {
    // A parsed object, as wrangler's JSON import gives; the others as Text modules.
    'config.json': JSON.parse(config),
    'generation_config.json': generationConfig,
    'model.safetensors': weights,
    'special_tokens_map.json': specialTokens,
    'tokenizer.json': tokenizer,
    'tokenizer_config.json': tokenizerConfig,
  },
});

export default { fetch: (request) => handle(request) };
