/**
 * A draft model for speculative decoding tests, made from a Llama-style checkpoint: its first `numLayers` decoder
 * layers, final norm and (tied) LM head, i.e. the same model truncated, with the same tokenizer. A smaller real
 * model that agrees with the full one often but not always, so that drafts are both accepted and rejected.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes the truncated copy of the checkpoint folder `src` into a fresh temporary folder and returns it. */
export function truncatedDraft(src: string, numLayers: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'draft-'));
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  if (numLayers >= config.num_hidden_layers) throw new Error(`truncatedDraft: ${src} has only ${config.num_hidden_layers} layers`);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: numLayers }, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    if (existsSync(join(src, f))) copyFileSync(join(src, f), join(dir, f));
  }
  // safetensors: u64 header length, JSON header { name: { dtype, shape, data_offsets: [begin, end] } }, data.
  const buf = readFileSync(join(src, 'model.safetensors'));
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const data = buf.subarray(8 + headerLen);
  const keep = Object.keys(header).filter((name) => {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return name !== '__metadata__' && (!m || Number(m[1]) < numLayers);
  });
  const out: Record<string, unknown> = header.__metadata__ ? { __metadata__: header.__metadata__ } : {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const name of keep) {
    const [begin, end] = header[name].data_offsets;
    chunks.push(data.subarray(begin, end));
    out[name] = { ...header[name], data_offsets: [offset, offset + end - begin] };
    offset += end - begin;
  }
  let json = Buffer.from(JSON.stringify(out), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([len, json, ...chunks]));
  return dir;
}
