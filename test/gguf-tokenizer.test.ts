/**
 * Tokenizers built from GGUF metadata (src/tokenizer/gguf.ts) against llama.cpp's own vocabulary tests
 * (models/ggml-vocab-*.gguf with their .inp texts and .out ids, made by Hugging Face's tokenizers and checked by
 * llama.cpp's test-tokenizer-0 with add_special = false) and against the tokenizer.json twins of the shared GGUFs.
 *
 * Cases: SentencePiece (llama-spm, phi-3) and byte-level BPE of every pre-tokenizer group ggufTokenizer knows.
 * The vocab files come from the llama.cpp source tree that node-llama-cpp 3.21.1 (devDependency) ships as a git
 * bundle (node_modules/node-llama-cpp/llama/gitRelease.bundle); they are extracted once into the OS temp folder.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelFileError } from '../src/errors.js';
import { readGgufHeader } from '../src/loader/gguf.js';
import { ggufModelConfig } from '../src/models/gguf-config.js';
import { FsByteSource } from '../bindings/node/fs-source.js';
import type { ByteSource } from '../src/platform.js';
import { Tokenizer } from '../src/tokenizer/index.js';
import { ggufTokenizer, ggufTokenizerFiles } from '../src/tokenizer/gguf.js';
import { MODELS, REPO, modelDir } from './helpers/paths.js';
import { HARD_STRINGS, prng, randomText } from './helpers/tokenizer-strings.js';

const BUNDLE = join(REPO, 'node_modules/node-llama-cpp/llama/gitRelease.bundle');
const TAG = JSON.parse(readFileSync(join(REPO, 'node_modules/node-llama-cpp/llama/llama.cpp.info.json'), 'utf8')).tag as string;
const VOCABS = join(tmpdir(), `webgpu-llm-llama.cpp-${TAG}-vocab`);
const CASES = ['llama-spm', 'phi-3', 'llama-bpe', 'qwen2', 'qwen35', 'gpt-2', 'mpt', 'starcoder', 'refact', 'command-r'];

/** Extracts models/ggml-vocab-<name>.gguf{,.inp,.out} from the bundle (a clone without checkout, then git show). */
function extractVocabs(): void {
  const files = CASES.flatMap((c) => ['', '.inp', '.out'].map((s) => `ggml-vocab-${c}.gguf${s}`));
  if (files.every((f) => existsSync(join(VOCABS, f)))) return;
  const repo = `${VOCABS}-git-${process.pid}`;
  execFileSync('git', ['clone', '--quiet', '--no-checkout', BUNDLE, repo]);
  mkdirSync(VOCABS, { recursive: true });
  for (const f of files) {
    const bytes = execFileSync('git', ['-C', repo, 'show', `HEAD:models/${f}`], { maxBuffer: 64 << 20 });
    // Written then renamed, so a concurrent run never reads half a file.
    writeFileSync(join(VOCABS, `${f}.${process.pid}`), bytes);
    renameSync(join(VOCABS, `${f}.${process.pid}`), join(VOCABS, f));
  }
  rmSync(repo, { recursive: true, force: true });
}

function fileSource(path: string): ByteSource {
  const bytes = new Uint8Array(readFileSync(path));
  return { name: path, size: bytes.length, read: async (o, l) => bytes.slice(o, o + l) };
}

async function tokenizerOf(path: string): Promise<Tokenizer> {
  const src = fileSource(path);
  return ggufTokenizer((await readGgufHeader(src)).metadata, src.name);
}

/** test-tokenizer-0's parsing: texts separated by "\n__ggml_vocab_test__\n", one line of ids per text. */
function vocabCases(name: string): [string, number[]][] {
  const raw = readFileSync(join(VOCABS, `ggml-vocab-${name}.gguf.inp`), 'utf8');
  const sep = '\n__ggml_vocab_test__\n';
  const texts: string[] = [];
  for (let pos = 0; pos < raw.length; ) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      texts.push(raw.slice(pos));
      break;
    }
    texts.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const outs = readFileSync(join(VOCABS, `ggml-vocab-${name}.gguf.out`), 'utf8').split('\n');
  if (outs[outs.length - 1] === '') outs.pop();
  expect(outs.length).toBe(texts.length);
  return texts.map((t, i) => [t, outs[i].trim() === '' ? [] : outs[i].trim().split(' ').map(Number)]);
}

beforeAll(extractVocabs, 120_000);

describe("llama.cpp's vocabulary tests", () => {
  for (const name of CASES) {
    it(`ggml-vocab-${name}: every .inp case encodes to its .out ids`, async () => {
      const tok = await tokenizerOf(join(VOCABS, `ggml-vocab-${name}.gguf`));
      const cases = vocabCases(name);
      expect(cases.length).toBeGreaterThan(30);
      for (const [text, ids] of cases) expect([text, tok.encode(text, { addSpecialTokens: false })]).toEqual([text, ids]);
      tok.dispose();
    }, 60_000);
  }
});

describe('GGUF tokenizer options', () => {
  it('byte-level vocabularies round-trip every shared string (decode(encode(s)) == s)', async () => {
    for (const name of ['llama-bpe', 'qwen2', 'gpt-2']) {
      const tok = await tokenizerOf(join(VOCABS, `ggml-vocab-${name}.gguf`));
      const rand = prng(7);
      const texts = [...HARD_STRINGS, ...Array.from({ length: 100 }, () => randomText(rand, []))];
      // Qwen2 normalizes to NFC, so its round trip is the NFC form.
      for (const t of texts) expect(tok.decode(tok.encode(t, { addSpecialTokens: false }))).toBe(name === 'qwen2' ? t.normalize('NFC') : t);
      tok.dispose();
    }
  });

  it('SentencePiece: add_space_prefix, add_bos_token / add_eos_token from the metadata', async () => {
    const h = await readGgufHeader(fileSource(join(VOCABS, 'ggml-vocab-llama-spm.gguf')));
    const base = await ggufTokenizer(h.metadata, 'spm.gguf');
    const id = (t: string) => base.tokenToId(t)!;
    expect(base.encode('Hello world')).toEqual([1, id('▁Hello'), id('▁world')]);
    const md = new Map(h.metadata);
    md.set('tokenizer.ggml.add_space_prefix', false);
    md.set('tokenizer.ggml.add_bos_token', false);
    md.set('tokenizer.ggml.add_eos_token', true);
    const tok = await ggufTokenizer(md, 'spm.gguf');
    expect(tok.encode('Hello world')).toEqual([id('Hello'), id('▁world'), 2]);
    expect(tok.decode(tok.encode('Hello world'), { skipSpecialTokens: true })).toBe('Hello world');
    // Bytes missing from the vocabulary fall back to <0xAB> tokens and decode back.
    expect(base.decode(base.encode('\u{1F999} \u0000'), { skipSpecialTokens: true })).toBe('\u{1F999} \u0000');
    base.dispose();
    tok.dispose();
  });

  it("BOS by llama.cpp's defaults when the file does not say: Llama 3 yes, Qwen2 and GPT-2 no", async () => {
    for (const [name, first] of [['llama-bpe', 128000], ['qwen2', 9707], ['gpt-2', 15496]] as const) {
      const src = fileSource(join(VOCABS, `ggml-vocab-${name}.gguf`));
      const h = await readGgufHeader(src);
      expect(h.metadata.has('tokenizer.ggml.add_bos_token')).toBe(false);
      const tok = await ggufTokenizer(h.metadata, src.name);
      expect(tok.encode('Hello')[0]).toBe(first);
      tok.dispose();
    }
  });
});

describe('GGUF tokenizer vs the tokenizer.json twin', () => {
  it('llama-2-tiny-random.gguf equals tiny-random-llama2/tokenizer.json on the shared strings', async () => {
    const gguf = await tokenizerOf(join(MODELS, 'gguf/llama-2-tiny-random.gguf'));
    const dir = modelDir('tiny-random-llama2');
    const ref = await Tokenizer.fromJson(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    expect([gguf.vocabSize, gguf.bosTokenId, gguf.eosTokenId, gguf.unkTokenId]).toEqual([ref.vocabSize, ref.bosTokenId, ref.eosTokenId, ref.unkTokenId]);
    // The two vocabularies differ in one token (U+2028 at 31353 where tokenizer.json has ""): texts with it are
    // left out. (U+FEFF at 30143 is a token of both: a GGUF string that starts with it keeps it.)
    const files = ggufTokenizerFiles((await readGgufHeader(fileSource(join(MODELS, 'gguf/llama-2-tiny-random.gguf')))).metadata, 'x');
    const ours = Object.entries((files.tokenizerJson.model as { vocab: Record<string, number> }).vocab);
    const theirs = new Map(Object.entries(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>));
    expect(ours.filter(([t, id]) => theirs.get(t) !== id)).toEqual([['\u2028', 31353]]);
    const rand = prng(16);
    const texts = [...HARD_STRINGS, ...Array.from({ length: 300 }, () => randomText(rand, ['<s>', '</s>', '<unk>']))].filter(
      (t) => !/[\ufeff\u2028]/.test(t),
    );
    expect(texts.length).toBeGreaterThan(250);
    for (const text of texts) {
      for (const addSpecialTokens of [true, false]) {
        const ids = gguf.encode(text, { addSpecialTokens });
        expect([text, ids]).toEqual([text, ref.encode(text, { addSpecialTokens })]);
        expect(gguf.decode(ids)).toBe(ref.decode(ids));
        expect(gguf.decode(ids, { skipSpecialTokens: true })).toBe(ref.decode(ids, { skipSpecialTokens: true }));
      }
    }
    gguf.dispose();
    ref.dispose();
  });

  it('stories260K.gguf equals stories260K/tokenizer.json on the shared strings', async () => {
    const gguf = await tokenizerOf(join(MODELS, 'gguf/stories260K.gguf'));
    const dir = modelDir('stories260K');
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    const ref = await Tokenizer.fromJson(read('tokenizer.json'), JSON.parse(read('tokenizer_config.json')), JSON.parse(read('special_tokens_map.json')));
    const rand = prng(3);
    for (const text of [...HARD_STRINGS, ...Array.from({ length: 300 }, () => randomText(rand, ['<s>', '</s>', '<unk>']))]) {
      const ids = gguf.encode(text);
      expect([text, ids]).toEqual([text, ref.encode(text)]);
      expect(gguf.decode(ids)).toBe(ref.decode(ids));
    }
    gguf.dispose();
    ref.dispose();
  });

  // tinystories-656K's tokenizer.json is not compared string by string: it makes <|start_story|> / <|end_story|>
  // normalized added tokens under a Prepend("▁") normalizer, which the GGUF's control tokens are not. On plain
  // text (the goldens prompts) the two agree.
  it('the shared GGUF files encode the goldens prompts and the hard strings as llama.cpp does (node-llama-cpp)', async () => {
    // tinystories-656K-q8_0.gguf is a BPE vocabulary converted with one score for every piece: llama.cpp's
    // SentencePiece merges those leftmost first, which is not what the HF tokenizer of its twin gives.
    const goldens = JSON.parse(readFileSync(join(MODELS, 'goldens.json'), 'utf8'));
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    for (const [file, twin] of [['stories260K.gguf', 'stories260K'], ['tinystories-656K-q8_0.gguf', 'tinystories-656K'], ['llama-2-tiny-random.gguf', 'tiny-random-llama2']]) {
      const path = join(MODELS, 'gguf', file);
      const tok = await tokenizerOf(path);
      const ref = await llama.loadModel({ modelPath: path, vocabOnly: true });
      // Special-token text (<s>) is text for llama.cpp without parse_special, a special token for HF tokenizers: left
      // out. A vocabulary without byte tokens (tinystories-656K's) makes llama.cpp abort on a character it lacks.
      const tokens = new Set((await readGgufHeader(fileSource(path))).metadata.get('tokenizer.ggml.tokens') as string[]);
      const encodable = (t: string) => tokens.has('<0x41>') || [...t.replaceAll(' ', '▁')].every((c) => tokens.has(c));
      const texts = [...(goldens[twin].prompts as { text: string }[]).map((p) => p.text), ...HARD_STRINGS].filter((t) => !/<\/?s>|<\||<unk>/.test(t) && encodable(t));
      for (const text of texts) {
        const want = [ref.tokens.bos as number, ...(ref.tokenize(text, false) as number[])];
        expect([file, text, tok.encode(text)]).toEqual([file, text, want]);
      }
      await ref.dispose();
      tok.dispose();
    }
  });

  it('chat template from tokenizer.chat_template; unsupported vocabularies are named', async () => {
    const src = fileSource(join(VOCABS, 'ggml-vocab-qwen2.gguf'));
    const h = await readGgufHeader(src);
    const tok = await ggufTokenizer(h.metadata, src.name);
    expect(tok.chatTemplate).toBe(h.metadata.get('tokenizer.chat_template'));
    expect(tok.chatTemplate).toContain('<|im_start|>');
    tok.dispose();
    const md = new Map(h.metadata);
    md.set('tokenizer.ggml.pre', 'falcon');
    expect(() => ggufTokenizerFiles(md, 'q.gguf')).toThrow(ModelFileError);
    expect(() => ggufTokenizerFiles(md, 'q.gguf')).toThrow(/q\.gguf: tokenizer\.ggml\.pre "falcon" is not supported/);
    md.set('tokenizer.ggml.model', 'bert');
    expect(() => ggufTokenizerFiles(md, 'q.gguf')).toThrow(/tokenizer\.ggml\.model "bert" is not supported/);
    md.delete('tokenizer.ggml.tokens');
    expect(() => ggufTokenizerFiles(md, 'q.gguf')).toThrow(/tokenizer\.ggml\.tokens is missing/);
  });
});

describe('large GGUF headers (vocab-only files)', () => {
  it('a 7.8 MB header is read in sequential 1 MiB windows through a file source, nothing twice', async () => {
    const src = await FsByteSource.open(join(VOCABS, 'ggml-vocab-llama-bpe.gguf'));
    const reads: [number, number][] = [];
    const counting: ByteSource = { name: src.name, size: src.size, read: (o, l) => (reads.push([o, l]), src.read(o, l)) };
    const h = await readGgufHeader(counting);
    await src.close();
    expect((h.metadata.get('tokenizer.ggml.merges') as string[]).length).toBe(280147);
    expect(reads.length).toBeGreaterThan(5);
    // Each window starts where parsing stood, after the previous one's start: the header is never re-read whole.
    for (let i = 1; i < reads.length; i++) expect(reads[i][0]).toBeGreaterThan(reads[i - 1][0]);
    const fetched = reads.reduce((a, [, l]) => a + l, 0);
    expect(fetched).toBeLessThan(2 * h.headerBytes);
  });

  it('qwen2 and Llama 3 metadata -> ModelConfig', async () => {
    const qwen = await readGgufHeader(fileSource(join(VOCABS, 'ggml-vocab-qwen2.gguf')));
    expect(ggufModelConfig(qwen, 'qwen2.gguf')).toMatchObject({
      architecture: 'Qwen2ForCausalLM', hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128,
      intermediateSize: 11008, vocabSize: 151936, maxModelLen: 32768, normEps: 1e-6, qkvBias: true,
      bosTokenId: 151643, eosTokenIds: [151643],
    });
    expect(ggufModelConfig(qwen, 'qwen2.gguf').rope).toMatchObject({ theta: 1e6, rotaryDim: 128 });
    const llama3 = await readGgufHeader(fileSource(join(VOCABS, 'ggml-vocab-llama-bpe.gguf')));
    expect(ggufModelConfig(llama3, 'llama3.gguf')).toMatchObject({
      architecture: 'LlamaForCausalLM', hiddenSize: 4096, numKvHeads: 8, intermediateSize: 14336, vocabSize: 128256,
      maxModelLen: 8192, bosTokenId: 128000, eosTokenIds: [128001],
    });
    expect(ggufModelConfig(llama3, 'llama3.gguf').rope).toMatchObject({ theta: 500000 });
  });
});
