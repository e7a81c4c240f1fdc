/**
 * Our CPU backend (WebAssembly) against llama.cpp on the CPU, in one run, on the same GGUF files: a
 * SmolLM2-135M-shaped model with random weights in Q8_0 and Q4_0 (bench/smollm2-gguf.ts, written once into
 * `--dir`), and the embedded default model (tinystories-656K) as llama.cpp quantized it to Q8_0 (`--models embedded`,
 * the GGUF in ../shared/models/gguf). For each model, thread count and number of concurrent streams: every stream gets its own random
 * `--prompt`-token prompt and generates `--tokens` tokens greedily (EOS ignored), all submitted at once.
 *
 *   TTFT     median over streams of the time to the stream's first token;
 *   prefill  streams x prompt tokens / the time until the last stream's first token;
 *   decode   tokens emitted after that moment, over all streams / the time from then to the last token ('-' when
 *            fewer than half of the tokens came after it: streams served one after another, as wllama's).
 *
 * Each cell is the median of `--reps` runs; the engines take turns within a rep, so a noisy neighbour on shared
 * cores hits all of them. Peers: llama.cpp's native build through node-llama-cpp (bench/cpu-compare-peers.ts) and, with
 * `--engines ...,wllama`, llama.cpp compiled to WebAssembly (@wllama/wllama in Chromium, bench/wllama-peer.ts).
 * `ours` takes the relaxed SIMD kernels where the runtime has them and they are faster (relaxedSimdFaster: not on Node
 * 20, which lacks them, nor Node 22, whose V8 runs them slower); `ours-simd128` the SIMD128
 * ones anyway; `ours-chromium` / `ours-chromium-simd128` run the built dist/browser.js in Chromium, whose V8 runs the
 * relaxed ones (bench/ours-chromium-peer.ts).
 *
 *   node build/bench/cpu-compare.js [--models embedded,q8_0,q4_0] [--threads 1,2] [--streams 1,8,32] [--prompt 128]
 *                                   [--tokens 32] [--reps 3] [--engines ours,llama.cpp] [--dir .cache/bench]
 */
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLlamaCpp, loadOurs, type BenchEngine, type LoadSpec, type TokenTimes } from './cpu-compare-peers.js';
import { LLM } from '../bindings/node/index.js';
import { PADDING_FROM, paddingText, smollm2Gguf, SMOLLM2, type BenchQuant } from './smollm2-gguf.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'q8_0,q4_0' },
    threads: { type: 'string', default: '1,2' },
    streams: { type: 'string', default: '1,8,32' },
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '32' },
    reps: { type: 'string', default: '3' },
    engines: { type: 'string', default: 'ours,llama.cpp' },
    dir: { type: 'string', default: '.cache/bench' },
    /** The GGUF whose vocabulary the random models borrow. */
    vocab: { type: 'string', default: '../shared/models/gguf/stories260K.gguf' },
    /** The embedded model's GGUF (`--models embedded`). */
    embedded: { type: 'string', default: '../shared/models/gguf/tinystories-656K-q8_0.gguf' },
  },
});
const list = (s: string) => s.split(',').filter(Boolean);
const P = Number(values.prompt);
const N = Number(values.tokens);
const REPS = Number(values.reps);
const STREAMS = list(values.streams).map(Number);
const ENGINES = list(values.engines);
const maxStreams = Math.max(...STREAMS);
const maxLen = Math.ceil((P + N + 1) / 16) * 16;

interface Cell {
  ttft: number;
  prefill: number;
  decode: number;
}

/** The three figures of one run (see the header). */
function cellOf(times: TokenTimes): Cell {
  const firsts = times.map((t) => t[0]);
  const firstAll = Math.max(...firsts);
  const end = Math.max(...times.map((t) => t[t.length - 1]));
  const after = times.reduce((n, t) => n + t.filter((x) => x > firstAll).length, 0);
  const all = times.reduce((n, t) => n + t.length, 0);
  // Streams served one after another (wllama's slots) emit most tokens before the last first token: no rate then.
  const decode = after * 2 >= all ? after / ((end - firstAll) / 1000) : NaN;
  return { ttft: median(firsts), prefill: (times.length * P) / (firstAll / 1000), decode };
}

/** The median of the runs that gave a figure (NaN: none did). */
function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * A model of the bench: its GGUF, a random prompt of P token ids (BOS first) from a random number source, and a
 * prompt's text for engines that take text only (wllama), which their tokenizer reads back as the same ids.
 */
interface BenchModel {
  label: string;
  file: string;
  prompt(next: () => number): number[];
  text(ids: readonly number[]): string;
  dispose?(): Promise<void>;
}

async function benchModel(name: string): Promise<BenchModel> {
  if (name !== 'embedded') {
    const file = await smollm2Gguf(name as BenchQuant, values.dir, values.vocab);
    const prompt = (next: () => number) => [1, ...Array.from({ length: P - 1 }, () => PADDING_FROM + (next() % (SMOLLM2.vocab - PADDING_FROM)))];
    return { label: `SmolLM2-135M-shaped ${name.toUpperCase()}`, file, prompt, text: paddingText };
  }
  // The embedded model: random text of its vocabulary's lowercase pieces, as many words as make exactly P tokens,
  // tokenized by its own GGUF tokenizer (ours, equal to llama.cpp's on its vocabulary tests).
  const llm = await LLM.create({ model: values.embedded, device: 'cpu', cpuThreads: 1 });
  const tok = llm.getTokenizer();
  const words = Array.from({ length: tok.vocabSize }, (_, id) => tok.decode([id])).filter((t) => /^[a-z]{2,} $/.test(t)).map((t) => t.trim());
  const text = (ids: readonly number[]) => tok.decode(ids.slice(1));
  const prompt = (next: () => number) => {
    let shorter = ''; // the longest text so far of fewer than P tokens
    for (let tries = 0; tries < 100 * P; tries++) {
      const t = `${shorter} ${words[next() % words.length]}`.trimStart();
      const ids = tok.encode(t);
      if (ids.length === P && tok.encode(text(ids)).join() === ids.join()) return ids;
      if (ids.length < P) shorter = t;
    }
    throw new Error(`no ${P}-token prompt of ${values.embedded}'s words`);
  };
  return { label: 'tinystories-656K (embedded) Q8_0', file: values.embedded, prompt, text, dispose: () => llm.dispose() };
}

/** A random prompt per stream, different in every run (no engine can reuse a cached prefix). */
function prompts(model: BenchModel, B: number, run: number): number[][] {
  let s = (run * 7919 + 1) >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s);
  return Array.from({ length: B }, () => model.prompt(next));
}

async function loadEngine(name: string, spec: LoadSpec): Promise<BenchEngine> {
  if (name === 'ours') return loadOurs(spec);
  if (name === 'ours-simd128') return loadOurs(spec, false);
  if (name === 'ours-chromium' || name === 'ours-chromium-simd128') return (await import('./ours-chromium-peer.js')).loadOursChromium(spec, name === 'ours-chromium');
  if (name === 'llama.cpp') return loadLlamaCpp(spec);
  if (name === 'wllama') return (await import('./wllama-peer.js')).loadWllama(spec);
  throw new Error(`unknown engine ${name} (ours, ours-simd128, ours-chromium, ours-chromium-simd128, llama.cpp, wllama)`);
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
console.log(`# ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), shared with other jobs; medians of ${REPS} runs; node ${process.version}`);
console.log(`# each stream: ${P}-token random prompt, ${N} greedy tokens; prefill = streams x ${P} / time to the last first token; decode = aggregate tok/s after it`);
const peers = ENGINES.filter((e) => e !== 'ours');
const head = ['model', 'threads', 'streams', 'ours prefill tok/s', 'ours decode tok/s', 'ours TTFT ms'];
for (const p of peers) head.push(`${p} prefill`, `${p} decode`, `${p} TTFT ms`, `prefill ours/${p}`, `decode ours/${p}`);
console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---|').join('')}`);

const failed = new Map<string, string>();
for (const modelName of list(values.models)) {
  const model = await benchModel(modelName);
  for (const threads of list(values.threads).map(Number)) {
    const cells = new Map<string, Cell[]>(); // `${engine} ${B}` -> one per rep
    // Reps outermost: each engine loads, runs every stream count and is disposed in turn (one engine's threads at a
    // time on the cores), so a noisy neighbour's bursts fall on all of them.
    for (let rep = 0; rep < REPS; rep++) {
      for (const name of ENGINES) {
        if (failed.has(name)) continue;
        let engine: BenchEngine | undefined;
        try {
          engine = await loadEngine(name, { model: resolve(model.file), threads, maxStreams, maxLen, text: model.text });
          await engine.run(prompts(model, maxStreams, 999), 4); // warm-up: workers started, kernels and buffers touched
          for (const B of STREAMS) {
            const key = `${name} ${B}`;
            const c = cellOf(await engine.run(prompts(model, B, rep * 1000 + B), N));
            cells.set(key, [...(cells.get(key) ?? []), c]);
            // Each run as it ends (stderr), so a run cut short still leaves its figures.
            console.error(`# ${modelName} threads ${threads} rep ${rep} ${name} ${B} streams: prefill ${fmt(c.prefill)} tok/s, decode ${fmt(c.decode, 1)} tok/s, TTFT ${fmt(c.ttft)} ms`);
          }
        } catch (err) {
          // A peer that cannot run here (no Chromium, no package) leaves its cells empty; the others go on.
          failed.set(name, String(err instanceof Error ? err.message : err).split('\n')[0]);
        } finally {
          await engine?.dispose();
        }
      }
    }
    for (const B of STREAMS) {
      const med = (e: string): Cell => {
        const cs = cells.get(`${e} ${B}`) ?? [];
        return { ttft: median(cs.map((c) => c.ttft)), prefill: median(cs.map((c) => c.prefill)), decode: median(cs.map((c) => c.decode)) };
      };
      const ours = med('ours');
      const row = [model.label, threads, B, fmt(ours.prefill), fmt(ours.decode, 1), fmt(ours.ttft)];
      for (const p of peers) {
        const c = med(p);
        row.push(fmt(c.prefill), fmt(c.decode, 1), fmt(c.ttft), fmt(ours.prefill / c.prefill, 2), fmt(ours.decode / c.decode, 2));
      }
      console.log(`| ${row.join(' | ')} |`);
    }
  }
  await model.dispose?.();
}
for (const [name, why] of failed) console.log(`# ${name} did not run: ${why}`);
