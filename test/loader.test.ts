import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsByteSource, FsModelSource } from '../bindings/node/fs-source.js';
import type { ModelConfig } from '../src/config/model-config.js';
import { parseModelConfig } from '../src/models/registry.js';
import { ModelFileError } from '../src/errors.js';
import { checkpointTensors } from '../src/models/registry.js';
import {
  f16BitsToF32, f32BitsToF16Bits, f32ToF16, toF16, toF32, transpose2d, convertTensor,
} from '../src/loader/convert.js';
import { DUMMY_FILE, dummyTensorChunks, streamDummyTensors } from '../src/loader/dummy.js';
import {
  readCheckpoint, readSafetensorsHeader, streamTensors, type SafetensorsDtype, type TensorChunk, type TensorInfo,
} from '../src/loader/safetensors.js';
import type { ByteSource } from '../src/platform.js';
import { MODELS, REPO, modelDir } from './helpers/paths.js';

const checkpoints = readdirSync(MODELS).filter((d) => existsSync(join(MODELS, d, 'model.safetensors')));
const configOf = (name: string) => parseModelConfig(readFileSync(join(modelDir(name), 'config.json'), 'utf8'));
const TMP = mkdtempSync(join(tmpdir(), 'webgpu-llm-loader-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** A fresh empty folder under the temp dir. */
const tmpFolder = (): string => mkdtempSync(join(TMP, 'case-'));

interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}
/** Writes a safetensors file (header padded to 8 bytes like the reference writer); `patch` edits the header JSON. */
function safetensorsBytes(tensors: RawTensor[], metadata?: Record<string, string>, patch?: (h: Record<string, any>) => void): Uint8Array {
  const header: Record<string, any> = metadata ? { __metadata__: metadata } : {};
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  patch?.(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}

const f32Bytes = (vals: number[]) => new Uint8Array(new Float32Array(vals).buffer);

/** Awaits `p` and checks it rejects with a ModelFileError whose file ends with `file` and message matches. */
async function expectFileError(p: Promise<unknown>, file: string, ...patterns: RegExp[]): Promise<ModelFileError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a ModelFileError').toBeInstanceOf(ModelFileError);
  const e = err as ModelFileError;
  expect(e.file.endsWith(file), `error file ${e.file} should end with ${file}`).toBe(true);
  for (const re of patterns) expect(e.message).toMatch(re);
  return e;
}

async function collectAll(gen: AsyncIterable<TensorChunk> | Iterable<TensorChunk>): Promise<TensorChunk[]> {
  const out: TensorChunk[] = [];
  for await (const c of gen) out.push(c);
  return out;
}

const DTYPE_OF: Record<ModelConfig['dtype'], SafetensorsDtype> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

/** The shared checkpoints and test/fixtures' (new families, made with transformers) by name -> folder. */
const allCheckpoints: [string, string][] = [
  ...checkpoints.map((n): [string, string] => [n, modelDir(n)]),
  ...readdirSync(join(REPO, 'test/fixtures/models')).map((n): [string, string] => [n, join(REPO, 'test/fixtures/models', n)]),
];

describe('safetensors fixtures', () => {
  it.each(allCheckpoints)('%s lists the tensors its config implies', async (name, dir) => {
    const cfg = parseModelConfig(readFileSync(join(dir, 'config.json'), 'utf8'));
    const ckpt = await readCheckpoint(await FsModelSource.open(dir));
    expect(ckpt.files).toEqual(['model.safetensors']);
    const specs = checkpointTensors(cfg);
    const used = new Set<string>();
    for (const spec of specs) {
      // Tied duplicates are stored once, under the name recorded in __metadata__.
      const stored = ckpt.tensors.get(spec.name) ?? ckpt.tensors.get(ckpt.aliases.get(spec.name) ?? '');
      expect(stored, `${name}: ${spec.name}`).toBeDefined();
      expect(stored!.shape, spec.name).toEqual(spec.shape);
      expect(stored!.dtype).toBe(DTYPE_OF[cfg.dtype]);
      used.add(stored!.name);
    }
    // Nothing else is stored, except an lm_head copy of a tied embedding.
    const extra = [...ckpt.tensors.keys()].filter((n) => !used.has(n));
    expect(extra.every((n) => n === 'lm_head.weight' && cfg.tieWordEmbeddings), `${name} extra: ${extra}`).toBe(true);
  });

  it('records tied aliases from __metadata__ (tinystories-656K stores only lm_head)', async () => {
    const ckpt = await readCheckpoint(await FsModelSource.open(modelDir('tinystories-656K')));
    expect(ckpt.aliases.get('model.embed_tokens.weight')).toBe('lm_head.weight');
    expect(ckpt.metadata.format).toBe('pt');
  });

  it.each(checkpoints)('%s streams byte-exact data, whole and in row chunks', async (name) => {
    const model = await FsModelSource.open(modelDir(name));
    const file = readFileSync(join(modelDir(name), 'model.safetensors'));
    const ckpt = await readCheckpoint(model);
    const infos = [...ckpt.tensors.values()];
    const whole = await collectAll(streamTensors(model, infos));
    expect(whole.map((c) => c.info.name)).toEqual(infos.map((t) => t.name));
    for (const c of whole) {
      expect(c.rowStart).toBe(0);
      expect(c.rows).toBe(c.info.shape[0] ?? 1);
      expect(c.data.byteOffset).toBe(0);
      expect(Buffer.from(c.data).equals(file.subarray(c.info.offset, c.info.offset + c.info.byteLength))).toBe(true);
    }
    // 1000-byte chunks: every large tensor arrives as consecutive row ranges that reassemble to the same bytes.
    const chunks = await collectAll(streamTensors(model, infos, { maxChunkBytes: 1000 }));
    const byName = new Map<string, TensorChunk[]>();
    for (const c of chunks) byName.set(c.info.name, [...(byName.get(c.info.name) ?? []), c]);
    for (const t of infos) {
      const parts = byName.get(t.name)!;
      let row = 0;
      for (const p of parts) {
        expect(p.rowStart).toBe(row);
        row += p.rows;
        if (parts.length > 1) expect(p.data.byteLength).toBeLessThanOrEqual(Math.max(1000, t.byteLength / (t.shape[0] ?? 1)));
      }
      expect(row).toBe(t.shape[0] ?? 1);
      const joined = Buffer.concat(parts.map((p) => p.data));
      expect(joined.equals(file.subarray(t.offset, t.offset + t.byteLength))).toBe(true);
    }
  });

  it('reads sharded checkpoints through model.safetensors.index.json', async () => {
    const src = modelDir('qwen2-rand');
    const model = await FsModelSource.open(src);
    const ckpt = await readCheckpoint(model);
    const all = await collectAll(streamTensors(model, ckpt.tensors.values()));
    const dir = tmpFolder();
    const half = Math.ceil(all.length / 2);
    const shards = [all.slice(0, half), all.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const fname = `model-0000${i + 1}-of-00002.safetensors`;
      const raw = part.map((c) => ({ name: c.info.name, dtype: c.info.dtype, shape: c.info.shape, data: c.data }));
      writeFileSync(join(dir, fname), safetensorsBytes(raw, { format: 'pt' }));
      for (const c of part) weightMap[c.info.name] = fname;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap }));
    const sharded = await readCheckpoint(await FsModelSource.open(dir));
    expect(sharded.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect([...sharded.tensors.keys()].sort()).toEqual([...ckpt.tensors.keys()].sort());
    const again = await collectAll(streamTensors(await FsModelSource.open(dir), sharded.tensors.values()));
    const want = new Map(all.map((c) => [c.info.name, c.data]));
    for (const c of again) expect(Buffer.from(c.data).equals(want.get(c.info.name)!)).toBe(true);
  });

  it('copies data handed back at an unaligned offset into its own buffer', async () => {
    const bytes = safetensorsBytes([{ name: 'w', dtype: 'F32', shape: [2, 2], data: f32Bytes([1, 2, 3, 4]) }]);
    // A source whose reads are views at odd offsets into one big buffer.
    const backing = new Uint8Array(bytes.length + 1);
    backing.set(bytes, 1);
    const src: ByteSource = { name: 'mem.safetensors', size: bytes.length, read: async (o, l) => backing.subarray(1 + o, 1 + Math.min(o + l, bytes.length)) };
    const model = { name: 'mem', exists: async () => true, readText: async () => '', open: async () => src };
    const { tensors } = await readSafetensorsHeader(src, 'model.safetensors');
    const [chunk] = await collectAll(streamTensors(model, tensors));
    expect(chunk.data.byteOffset).toBe(0);
    expect([...toF32(chunk.data, 'F32')]).toEqual([1, 2, 3, 4]);
    chunk.data[0] = 99;
    expect(backing[1 + tensors[0].offset]).not.toBe(99); // the source's memory is untouched
  });

  it('closes every file when the consumer stops early', async () => {
    const closed: string[] = [];
    const inner = await FsModelSource.open(modelDir('stories260K'));
    const model = {
      name: inner.name,
      exists: (f: string) => inner.exists(f),
      readText: (f: string) => inner.readText(f),
      open: async (f: string) => {
        const s = await inner.open(f);
        return { name: s.name, size: s.size, read: s.read.bind(s), close: async () => { closed.push(f); await s.close?.(); } };
      },
    };
    const ckpt = await readCheckpoint(model);
    closed.length = 0;
    for await (const _ of streamTensors(model, ckpt.tensors.values())) break;
    expect(closed).toEqual(['model.safetensors']);
  });
});

describe('malformed safetensors and index files', () => {
  const good = () => safetensorsBytes([
    { name: 'a', dtype: 'F32', shape: [2, 3], data: f32Bytes([1, 2, 3, 4, 5, 6]) },
    { name: 'b', dtype: 'F16', shape: [4], data: new Uint8Array(8) },
  ]);
  /** Writes `bytes` as model.safetensors in a fresh folder and reads its checkpoint. */
  async function readBytes(bytes: Uint8Array) {
    const dir = tmpFolder();
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    const model = await FsModelSource.open(dir);
    return { model, result: readCheckpoint(model) };
  }
  const F = 'model.safetensors';

  it('accepts the well-formed file', async () => {
    const { result } = await readBytes(good());
    expect([...(await result).tensors.keys()]).toEqual(['a', 'b']);
  });
  it('rejects a file shorter than 8 bytes', async () => {
    await expectFileError((await readBytes(new Uint8Array(5))).result, F, /5 bytes, shorter than the 8-byte header length/);
    await expectFileError((await readBytes(new Uint8Array(0))).result, F, /0 bytes/);
  });
  it('rejects an absurd header length', async () => {
    const b = good();
    new DataView(b.buffer).setUint32(4, 7, true); // high word: length >= 2^32
    await expectFileError((await readBytes(b)).result, F, /header length \d+ is absurd/);
    const c = good();
    new DataView(c.buffer).setUint32(0, 200_000_000, true);
    await expectFileError((await readBytes(c)).result, F, /absurd/);
  });
  it('rejects a header length past the end of the file', async () => {
    const b = good();
    new DataView(b.buffer).setUint32(0, b.length, true);
    await expectFileError((await readBytes(b)).result, F, /runs past the end of the file/);
  });
  it('rejects a header that is not JSON, or not an object', async () => {
    const b = good();
    b[8] = '['.charCodeAt(0);
    await expectFileError((await readBytes(b)).result, F, /header is not valid JSON/);
    const arr = new TextEncoder().encode('[1,2,3]');
    const c = new Uint8Array(8 + arr.length);
    c[0] = arr.length;
    c.set(arr, 8);
    await expectFileError((await readBytes(c)).result, F, /not a JSON object/);
    const d = good();
    d[10] = 0xff; // invalid UTF-8 inside the header
    await expectFileError((await readBytes(d)).result, F, /not valid JSON/);
  });
  it('rejects tensor entries missing dtype, shape or data_offsets', async () => {
    for (const key of ['dtype', 'shape', 'data_offsets']) {
      const b = safetensorsBytes([{ name: 'w', dtype: 'F32', shape: [1], data: f32Bytes([1]) }], undefined, (h) => delete h.w[key]);
      await expectFileError((await readBytes(b)).result, F, new RegExp(`tensor "w": missing "${key}"`));
    }
  });
  it('rejects unknown dtypes and malformed shapes/offsets', async () => {
    const one = (patch: (h: Record<string, any>) => void) => safetensorsBytes([{ name: 'w', dtype: 'F32', shape: [2], data: f32Bytes([1, 2]) }], undefined, patch);
    await expectFileError((await readBytes(one((h) => (h.w.dtype = 'Q4_K')))).result, F, /tensor "w": unsupported dtype "Q4_K"/);
    await expectFileError((await readBytes(one((h) => (h.w.shape = [2, -1])))).result, F, /"shape" must be a list of non-negative integers/);
    await expectFileError((await readBytes(one((h) => (h.w.data_offsets = [8, 0])))).result, F, /"data_offsets" must be \[begin, end\]/);
    await expectFileError((await readBytes(one((h) => (h.w.data_offsets = [0, 6])))).result, F, /span 6 bytes but shape \[2\] of F32 needs 8/);
    await expectFileError((await readBytes(one((h) => (h.w.shape = [3])))).result, F, /needs 12/);
    await expectFileError((await readBytes(one((h) => (h.__metadata__ = { n: 1 })))).result, F, /"__metadata__.n" must be a string/);
  });
  it('rejects offsets beyond the data and overlapping tensors', async () => {
    const b = safetensorsBytes([{ name: 'w', dtype: 'F32', shape: [2], data: f32Bytes([1, 2]) }], undefined, (h) => (h.w.data_offsets = [8, 16]));
    await expectFileError((await readBytes(b)).result, F, /tensor "w" data ends at byte \d+ but the file is \d+ bytes; the file is truncated/);
    const o = safetensorsBytes(
      [{ name: 'a', dtype: 'F32', shape: [2], data: f32Bytes([1, 2]) }, { name: 'b', dtype: 'F32', shape: [2], data: f32Bytes([3, 4]) }],
      undefined,
      (h) => (h.b.data_offsets = [4, 12]),
    );
    await expectFileError((await readBytes(o)).result, F, /tensors "a" and "b" overlap/);
  });
  it('rejects a truncated real checkpoint (cut in half), naming the tensor', async () => {
    const bytes = readFileSync(join(modelDir('qwen3-rand'), 'model.safetensors'));
    await expectFileError((await readBytes(bytes.subarray(0, bytes.length >> 1))).result, F, /tensor "[^"]+" data ends at byte .* truncated/);
    await expectFileError((await readBytes(bytes.subarray(0, 100))).result, F, /runs past the end/);
  });
  it('reports a file truncated after its header was read, instead of hanging', async () => {
    const dir = tmpFolder();
    writeFileSync(join(dir, F), readFileSync(join(modelDir('stories260K'), F)));
    const model = await FsModelSource.open(dir);
    const ckpt = await readCheckpoint(model);
    truncateSync(join(dir, F), 200_000);
    // FsByteSource reads the size at open, so the shortfall shows up as a short read.
    await expectFileError(collectAll(streamTensors(model, ckpt.tensors.values())), F, /expected \d+ bytes at offset \d+, read \d+; the file is truncated/);
  });

  /** A folder with one good shard and an index written by `index`. */
  async function shardedFolder(index: unknown): Promise<FsModelSource> {
    const dir = tmpFolder();
    writeFileSync(join(dir, 'shard-1.safetensors'), good());
    writeFileSync(join(dir, 'model.safetensors.index.json'), typeof index === 'string' ? index : JSON.stringify(index));
    return FsModelSource.open(dir);
  }
  const I = 'model.safetensors.index.json';
  it('rejects an index that references a missing shard', async () => {
    const m = await shardedFolder({ weight_map: { a: 'shard-1.safetensors', b: 'shard-2.safetensors' } });
    await expectFileError(readCheckpoint(m), I, /references shard "shard-2.safetensors", which does not exist/);
  });
  it('rejects malformed index files', async () => {
    await expectFileError(readCheckpoint(await shardedFolder('{"weight_map": ')), I, /not valid JSON/);
    await expectFileError(readCheckpoint(await shardedFolder({ metadata: {} })), I, /"weight_map" is missing/);
    await expectFileError(readCheckpoint(await shardedFolder({ weight_map: {} })), I, /"weight_map" is empty/);
    await expectFileError(readCheckpoint(await shardedFolder({ weight_map: { a: '../shard-1.safetensors' } })), I, /relative file name inside the model folder/);
    await expectFileError(readCheckpoint(await shardedFolder({ weight_map: { a: 3 } })), I, /weight_map\["a"\]/);
    await expectFileError(
      readCheckpoint(await shardedFolder({ weight_map: { a: 'shard-1.safetensors', zzz: 'shard-1.safetensors' } })),
      I,
      /puts "zzz" in shard-1.safetensors, but that shard has no such tensor/,
    );
  });
  it('rejects a folder with no checkpoint', async () => {
    const dir = tmpFolder();
    await expectFileError(readCheckpoint(await FsModelSource.open(dir)), dir, /has no model.safetensors or model.safetensors.index.json/);
  });
  it('reports a corrupted config.json read through FsModelSource', async () => {
    const dir = tmpFolder();
    const text = readFileSync(join(modelDir('llama3-rand'), 'config.json'), 'utf8');
    writeFileSync(join(dir, 'config.json'), text.slice(0, text.length / 2));
    const model = await FsModelSource.open(dir);
    await expectFileError((async () => parseModelConfig(await model.readText('config.json'), join(dir, 'config.json')))(), 'config.json', /not valid JSON/);
  });
});

describe('FsModelSource / FsByteSource', () => {
  it('names a missing folder, a file given as folder, and missing files', async () => {
    await expectFileError(FsModelSource.open(join(TMP, 'nope')), 'nope', /does not exist/);
    await expectFileError(FsModelSource.open(join(modelDir('stories260K'), 'config.json')), 'config.json', /is not a directory/);
    const m = await FsModelSource.open(modelDir('stories260K'));
    expect(await m.exists('config.json')).toBe(true);
    expect(await m.exists('missing.json')).toBe(false);
    await expectFileError(m.readText('missing.json'), 'missing.json', /does not exist/);
    await expectFileError(m.open('missing.safetensors'), 'missing.safetensors', /does not exist/);
    await expectFileError(m.open('../tinystories-656K/config.json'), 'config.json', /outside the model folder/);
  });
  it('reads at offsets, short only at the end, and refuses reads after close', async () => {
    const path = join(modelDir('stories260K'), 'config.json');
    const bytes = readFileSync(path);
    const s = await FsByteSource.open(path);
    expect(s.size).toBe(bytes.length);
    expect(Buffer.from(await s.read(3, 10)).equals(bytes.subarray(3, 13))).toBe(true);
    expect((await s.read(bytes.length - 4, 100)).length).toBe(4);
    expect((await s.read(bytes.length + 10, 5)).length).toBe(0);
    await s.close();
    await expectFileError(s.read(0, 1), 'config.json', /read after close/);
  });
});

describe('dtype conversion', () => {
  it('converts bf16 to f32 exactly (bits << 16)', async () => {
    const special = new Uint16Array([0x3f80, 0xc000, 0x0000, 0x8000, 0x7f80, 0xff80, 0x0001, 0x7f7f, 0x3e20]);
    const f = toF32(new Uint8Array(special.buffer), 'BF16');
    expect([...f.slice(0, 4)]).toEqual([1, -2, 0, -0]);
    expect(f[4]).toBe(Infinity);
    expect(f[5]).toBe(-Infinity);
    expect(f[6]).toBe(2 ** -133); // smallest bf16 subnormal
    expect(f[7]).toBe(Math.fround(3.3895313892515355e38)); // largest finite bf16
    expect(f[8]).toBe(0.15625);
    expect(toF32(new Uint8Array(new Uint16Array([0x7fc0]).buffer), 'BF16')[0]).toBeNaN();
    // A whole real bf16 tensor: every value's f32 bits are the bf16 bits shifted up.
    const model = await FsModelSource.open(modelDir('llama3-rand'));
    const ckpt = await readCheckpoint(model);
    const [chunk] = await collectAll(streamTensors(model, [ckpt.tensors.get('model.layers.0.mlp.down_proj.weight')!]));
    const bf = new Uint16Array(chunk.data.buffer);
    const bits = new Uint32Array(toF32(chunk.data, 'BF16').buffer);
    for (let i = 0; i < bf.length; i++) expect(bits[i]).toBe((bf[i] << 16) >>> 0);
  });

  it('rounds f32 to f16 to nearest even at the edges', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800],
      [65504, 0x7bff], // largest f16
      [65519.99, 0x7bff], // below the midpoint to 65536: rounds down
      [65520, 0x7c00], // the midpoint: ties to even = 2^16 = inf
      [1e6, 0x7c00], [-1e6, 0xfc00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [1 + 2 ** -11, 0x3c00], // tie: even mantissa (down)
      [1 + 3 * 2 ** -11, 0x3c02], // tie: even mantissa (up)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal (odd) and smallest normal (even)
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: even = 0
      [2 ** -25 * (1 + 2 ** -20), 0x0001], // just above: up
      [3 * 2 ** -25, 0x0002], // 1.5 units: tie to even = 2
      [5 * 2 ** -25, 0x0002], // 2.5 units: tie to even = 2
      [-(2 ** -24), 0x8001], [1e-8, 0x0000], [-1e-8, 0x8000], [2 ** -149, 0x0000],
      [0.1, 0x2e66], [Math.PI, 0x4248],
    ];
    const input = new Float32Array(cases.map((c) => c[0]));
    const got = f32ToF16(input);
    cases.forEach(([x, want], i) => expect(got[i], `${x}`).toBe(want));
    const nan = f32ToF16(new Float32Array([NaN]))[0];
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('round-trips every f16 value and agrees with a nearest-value search on random floats', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      if (Number.isNaN(v)) continue;
      expect(f32BitsToF16Bits(new Uint32Array(new Float32Array([v]).buffer)[0])).toBe(h);
    }
    // Reference: all finite non-negative f16 values in order; pick the nearest, ties to the even bit pattern.
    const values = Array.from({ length: 0x7c00 }, (_, h) => f16BitsToF32(h));
    const ref = (x: number): number => {
      const a = Math.abs(x);
      const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
      if (a >= 65520) return sign | 0x7c00;
      let lo = 0;
      let hi = values.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (values[mid] <= a) lo = mid;
        else hi = mid;
      }
      const dl = a - values[lo];
      const dh = values[hi] - a;
      return sign | (dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi);
    };
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const xs = new Float32Array(50000);
    for (let i = 0; i < xs.length; i++) xs[i] = (rnd() - 0.5) * 2 ** Math.floor(rnd() * 44 - 28);
    const got = f32ToF16(xs);
    for (let i = 0; i < xs.length; i++) if (got[i] !== ref(xs[i])) expect(got[i], `x=${xs[i]}`).toBe(ref(xs[i]));
  });

  it('converts f16 to f32 and bf16 to f16 through their tables', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = toF32(new Uint8Array(all.buffer), 'F16');
    for (let h = 0; h < 65536; h += 7) {
      const want = f16BitsToF32(h);
      if (Number.isNaN(want)) expect(f[h]).toBeNaN();
      else expect(f[h]).toBe(want);
    }
    const viaF32 = f32ToF16(toF32(new Uint8Array(all.buffer), 'BF16'));
    expect(toF16(new Uint8Array(all.buffer), 'BF16')).toEqual(viaF32);
    // F16 -> f16 and F32 -> f32 are views, not copies.
    const raw = new Uint8Array(16);
    expect(toF16(raw, 'F16').buffer).toBe(raw.buffer);
    expect(toF32(raw, 'F32').buffer).toBe(raw.buffer);
    expect(convertTensor(raw, 'F32', 'f16')).toBeInstanceOf(Uint16Array);
  });

  it('transposes GPT-2 Conv1D weights [in, out] -> [out, in]', async () => {
    const m = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
    expect([...transpose2d(m, 2, 3)]).toEqual([1, 4, 2, 5, 3, 6]);
    const big = new Uint16Array(70 * 45).map((_, i) => i);
    const t = transpose2d(big, 70, 45);
    for (let r = 0; r < 70; r++) for (let c = 0; c < 45; c++) expect(t[c * 70 + r]).toBe(big[r * 45 + c]);
    expect(() => transpose2d(m, 4, 4)).toThrow(RangeError);
  });

  it('measures conversion throughput', () => {
    // Weight-like data (normal, std 0.02), converted into reused outputs: fresh outputs add page-fault time that
    // depends on the host more than on the loops (on a small VM it can dominate).
    const n = 16 * 1024 * 1024;
    let seed = 1;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) + 0.5) / 2 ** 32;
    const f32 = new Float32Array(n);
    for (let i = 0; i < n; i++) f32[i] = 0.02 * Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
    const bf16 = new Uint16Array(n).map((_, i) => new Uint32Array(f32.buffer)[i] >>> 16);
    const f16 = f32ToF16(f32);
    const out32 = new Float32Array(n).fill(1);
    const out16 = new Uint16Array(n).fill(1);
    const time = (label: string, inBytes: number, fn: () => unknown) => {
      fn(); // warm up (tables, JIT)
      let best = Infinity;
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        fn();
        best = Math.min(best, performance.now() - t0);
      }
      console.info(`convert ${label}: ${((inBytes / best) * 1e-3).toFixed(0)} MB/s of input (${(n / best / 1e3).toFixed(0)} M elem/s)`);
    };
    const b = (a: Uint16Array | Float32Array) => new Uint8Array(a.buffer);
    time('BF16 -> f32', n * 2, () => toF32(b(bf16), 'BF16', out32));
    time('F16 -> f32', n * 2, () => toF32(b(f16), 'F16', out32));
    time('BF16 -> f16', n * 2, () => toF16(b(bf16), 'BF16', out16));
    time('F32 -> f16', n * 4, () => toF16(b(f32), 'F32', out16));
    time('transpose f16 [2048, 8192]', n * 2, () => transpose2d(f16, 2048, 8192, out16));
    time('BF16 -> f16, fresh output', n * 2, () => toF16(b(bf16), 'BF16'));
  });
});

describe('dummy weights', () => {
  it.each(checkpoints)('%s: dummy tensors mirror the real checkpoint', async (name) => {
    const cfg = configOf(name);
    const ckpt = await readCheckpoint(await FsModelSource.open(modelDir(name)));
    for (const chunk of streamDummyTensors(checkpointTensors(cfg), { dtype: 'f16' })) {
      const real = ckpt.tensors.get(chunk.info.name) ?? ckpt.tensors.get(ckpt.aliases.get(chunk.info.name)!);
      expect(real?.shape, chunk.info.name).toEqual(chunk.info.shape);
      expect(chunk.info.file).toBe(DUMMY_FILE);
    }
  });

  it('fills uniform [-1e-3, 1e-3], norms 1, deterministic per seed', () => {
    const cfg = configOf('opt-rand');
    const chunks = [...streamDummyTensors(checkpointTensors(cfg), { dtype: 'f32', seed: 7 })];
    for (const c of chunks) {
      const v = toF32(c.data, 'F32');
      if (c.info.name.endsWith('layer_norm.weight')) expect(v.every((x) => x === 1)).toBe(true);
      else if (c.info.name.endsWith('layer_norm.bias')) expect(v.every((x) => x === 0)).toBe(true);
      else {
        expect(v.every((x) => x >= -1e-3 && x <= 1e-3)).toBe(true);
        if (v.length >= 1000) {
          const mean = v.reduce((a, b) => a + b, 0) / v.length;
          const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
          expect(Math.abs(mean)).toBeLessThan(1e-4);
          expect(Math.abs(std - 1e-3 / Math.sqrt(3))).toBeLessThan(3e-5);
        }
      }
    }
    const again = [...streamDummyTensors(checkpointTensors(cfg), { dtype: 'f32', seed: 7 })];
    expect(Buffer.from(again[1].data).equals(Buffer.from(chunks[1].data))).toBe(true);
    const other = [...streamDummyTensors(checkpointTensors(cfg), { dtype: 'f32', seed: 8 })];
    expect(Buffer.from(other[1].data).equals(Buffer.from(chunks[1].data))).toBe(false);
    // f16 dummies decode into the same range; norm weights are 1.0 = 0x3c00.
    for (const c of streamDummyTensors(checkpointTensors(cfg), { dtype: 'f16' })) {
      const v = toF32(c.data, 'F16');
      if (c.info.name.endsWith('layer_norm.weight')) expect(new Uint16Array(c.data.buffer).every((b) => b === 0x3c00)).toBe(true);
      // The top bins round to f16(1e-3) = 0.0010004, as torch's uniform_ on a half tensor can.
      else expect(v.every((x) => Math.abs(x) <= f16BitsToF32(f32ToF16(new Float32Array([1e-3]))[0]))).toBe(true);
    }
  });

  it('generates large tensors in row chunks', () => {
    const spec = { name: 'embed', shape: [1001, 7], init: 'uniform' as const };
    const parts = [...dummyTensorChunks(spec, { dtype: 'f16', maxChunkBytes: 1000 })];
    expect(parts.length).toBeGreaterThan(10);
    expect(parts.reduce((a, p) => a + p.rows, 0)).toBe(1001);
    for (const p of parts) expect(p.data.byteLength).toBe(p.rows * 14);
  });

  it('measures fill throughput on Llama-3.2-1B shapes', () => {
    const cfg = parseModelConfig(readFileSync(join(MODELS, '../bench-models/llama-3.2-1b/config.json'), 'utf8'));
    for (const reuseBuffer of [true, false]) {
      // Fresh buffers are slow where page faults are (small VMs): measure fewer bytes.
      const budget = (reuseBuffer ? 1024 : 256) * 1024 * 1024;
      for (const dtype of ['f16', 'f32'] as const) {
        let bytes = 0;
        const t0 = performance.now();
        for (const c of streamDummyTensors(checkpointTensors(cfg), { dtype, reuseBuffer })) {
          bytes += c.data.byteLength;
          if (bytes >= budget) break;
        }
        const ms = performance.now() - t0;
        const how = reuseBuffer ? 'reused buffer' : 'fresh buffers';
        console.info(`dummy fill ${dtype}, ${how}: ${((bytes / ms) * 1e-3).toFixed(0)} MB/s (${(bytes / 2 ** 20).toFixed(0)} MiB in ${ms.toFixed(0)} ms)`);
      }
    }
  });

  it('gives the same values with a reused buffer', () => {
    const cfg = configOf('qwen3-rand');
    // Hash each chunk as it arrives: a reused chunk's bytes change when the next one is generated.
    const digest = (reuseBuffer: boolean) => {
      const out: string[] = [];
      for (const c of streamDummyTensors(checkpointTensors(cfg), { maxChunkBytes: 4096, reuseBuffer })) out.push(createHash('sha1').update(c.data).digest('hex'));
      return out;
    };
    expect(digest(true)).toEqual(digest(false));
  });
});

describe('layering', () => {
  it('src/config and src/loader use no Node built-ins and never import bindings/', () => {
    for (const dir of ['src/config', 'src/loader']) {
      for (const f of readdirSync(join(REPO, dir))) {
        const text = readFileSync(join(REPO, dir, f), 'utf8');
        expect(text, `${dir}/${f}`).not.toMatch(/from ['"](node:|fs|path|os|buffer)['"/]/);
        expect(text, `${dir}/${f}`).not.toMatch(/bindings\//);
        expect(text, `${dir}/${f}`).not.toMatch(/\bBuffer\b|\bprocess\./);
      }
    }
  });

  it('the engine reaches the hardware only through the executor port: src/engine imports no gpu/, ops/, models/, layers/ or worker/', () => {
    for (const f of readdirSync(join(REPO, 'src/engine'))) {
      const text = readFileSync(join(REPO, 'src/engine', f), 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      expect(imports.filter((i) => /^\.\.\/(gpu|ops|models|layers|worker)\//.test(i)), `src/engine/${f}`).toEqual([]);
    }
  });


});

