/**
 * bindings/edge's pieces in plain Node: MemoryModelSource (bytes, text, parsed JSON; bad input named), the
 * precompiled-module port (src/wasm/modules.ts), and edgePlatform's model rules.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { edgePlatform, MemoryModelSource, setWasmModules } from '../bindings/edge/index.js';
import { ModelFileError } from '../src/errors.js';
import { DEFAULT_MODEL } from './helpers/paths.js';

describe('MemoryModelSource', () => {
  const weights = readFileSync(join(DEFAULT_MODEL, 'model.safetensors'));
  const config = readFileSync(join(DEFAULT_MODEL, 'config.json'), 'utf8');
  const source = new MemoryModelSource('m', { 'model.safetensors': weights, 'config.json': config, 'parsed.json': { a: [1, 2] }, 'ab.bin': new Uint8Array([1, 2, 3]).buffer });

  it('reads bytes by range as copies, text, and parsed JSON back as text', async () => {
    const f = await source.open('model.safetensors');
    expect(f.size).toBe(weights.byteLength);
    const head = await f.read(0, 8);
    expect([...head]).toEqual([...weights.subarray(0, 8)]);
    head[0] ^= 0xff; // the caller's copy: the next read is unchanged
    expect([...(await f.read(0, 8))]).toEqual([...weights.subarray(0, 8)]);
    expect((await f.read(weights.byteLength - 4, 100)).byteLength).toBe(4);
    expect(await source.readText('config.json')).toBe(config);
    expect(JSON.parse(await source.readText('parsed.json'))).toEqual({ a: [1, 2] });
    expect([...(await (await source.open('ab.bin')).read(1, 2))]).toEqual([2, 3]);
    expect(await source.exists('tokenizer.json')).toBe(false);
    expect(await source.list()).toEqual(['model.safetensors', 'config.json', 'parsed.json', 'ab.bin']);
  });

  it('names a missing file and a file of the wrong kind', async () => {
    await expect(source.readText('tokenizer.json')).rejects.toThrow(/m\/tokenizer\.json: not found \(the files given are: model\.safetensors, config\.json, parsed\.json, ab\.bin\)/);
    expect(() => new MemoryModelSource('m', { 'model.safetensors': 42 as never })).toThrow(ModelFileError);
    expect(() => new MemoryModelSource('m', { 'w.bin': { a: 1 } })).toThrow(/m\/w\.bin: a model file must be an ArrayBuffer, a typed array, text or \(a \.json file\) a parsed object, got \[object Object\]/);
  });
});

describe('edgePlatform', () => {
  it('refuses what an isolate cannot open, saying what to pass', async () => {
    const p = edgePlatform();
    await expect(p.openModel(undefined)).rejects.toThrow(/no model given: pass edgePlatform\(\{ model: \{ 'config\.json'/);
    await expect(p.openModel('org/name')).rejects.toThrow(/looks like a Hugging Face repo id; an isolate has no cache/);
    await expect(p.openModel('./models/x')).rejects.toThrow(/must be an http\(s\) URL prefix \(an isolate has no filesystem\)/);
    expect((await p.openModel('https://example.com/m')).name).toBe('https://example.com/m/');
  });

  it('takes precompiled modules only', async () => {
    expect(() => setWasmModules({ core: new Uint8Array(8) as never })).toThrow(/'core' must be a WebAssembly\.Module \(a precompiled core\.wasm\), got \[object Uint8Array\]/);
    expect(() => setWasmModules({ cpu: undefined })).not.toThrow(); // an absent name is left as it was
  });
});
