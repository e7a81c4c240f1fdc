/**
 * The CPU sampler: a whole batch of logits rows sampled by one `sample` call, in core.wasm (assembly/sampler.ts), each
 * row with its own SamplingParams and Generator. Stages, in vLLM V1's order (vllm/v1/sample/sampler.py):
 *   1. raw logprobs of the model's row, for requests asking `logprobs`;
 *   2. `allowedTokenIds`, `badWords`, `minTokens` (EOS/stop ids -> -inf while the output is shorter), `logitBias`;
 *   2b. `logitsProcessors` (JS callbacks, here in TS; V1's slot for custom processors: after the built-in
 *      masks and bias, before penalties; they see the masked row and their result is what gets penalised);
 *   3. `repetitionPenalty` (prompt + output), `frequencyPenalty` and `presencePenalty` (output);
 *   3b. a forced token (thinkingTokenBudget's end of thinking): its logit becomes 1e9, as vLLM raises it after the
 *      penalties, so nothing else can be drawn;
 *   4. greedy argmax, or `temperature`, `minP`, `topK`, `topP` and one draw from the request's generator;
 *   5. the sampled token's logprob and rank, and the top-`logprobs` of the raw row.
 * The facade owns every allocation: one logits row of Vp floats (V rounded up to 16, padded with -inf), one raw
 * copy for logprobs rows that stages 2-3 edit, the per-row parameter block (sampler-layout.ts), a pool of id
 * lists, and scratch. Rows are copied in and sampled one at a time (one samplerRun call each): every pass then
 * reads a row still in cache, where copying the whole batch first (39 MB at S = 64) would send each row to DRAM
 * and back.
 *
 * @example
 *   const sampler = await Sampler.create(vocabSize);
 *   const [out] = sampler.sample(logits, [{ params, generator, promptTokenIds, outputTokenIds, stopTokenIds: [eos] }]);
 *   out.tokenId; out.logprobs?.sampled;
 */
import { InvalidArgumentError } from '../errors.js';
import type { SamplingParams } from '../sampling-params.js';
import { loadCore, type Core } from '../wasm/core.js';
import { bannedByBadWords } from './bad-words.js';
import { logSumExp } from './logprobs.js';
import type { Generator } from './generator.js';
import type { TokenLogprobs } from './logprobs.js';
import { F, NUM_FIELDS } from './sampler-layout.js';

export { argmax, logSoftmax, topLogprobs, type TokenLogprobs } from './logprobs.js';
export { badWordsTokenIds } from './bad-words.js';

/** One row's request: what the sampler needs beyond the logits. */
export interface SamplerRequest {
  /** The request's validated parameters. */
  params: SamplingParams;
  /** The request's own generator: a non-greedy row advances it by exactly one `uniform()` (two u32 draws). */
  generator: Generator;
  /** Prompt ids (read only when `repetitionPenalty` != 1). */
  promptTokenIds: ArrayLike<number>;
  /** Output ids so far (penalties, `minTokens`, `badWords`, and the argument of `logitsProcessors`). */
  outputTokenIds: readonly number[];
  /** Ids banned while `outputTokenIds.length < params.minTokens`: the EOS ids (unless `ignoreEos`) and `stopTokenIds`. */
  stopTokenIds?: readonly number[];
  /** `params.badWords` tokenized by `badWordsTokenIds`; required when `params.badWords` is non-empty. */
  badWordsTokenIds?: readonly (readonly number[])[];
  /**
   * Structured outputs: the tokens the request's grammar allows this step, Int32Array [ceil(V / 32)] with bit t % 32
   * of word t >> 5 set = allowed (xgrammar's layout). The others are -inf before stage 1, as vLLM applies the
   * grammar bitmask to the logits before its sampler (so logprobs are of the masked row). Null/absent: no grammar.
   */
  tokenBitmask?: Int32Array | null;
  /** The token this step must give (thinking-budget.ts: the end of a think section over budget); null: none. */
  forcedTokenId?: number | null;
}

/** What sampling gave for one row. */
export interface SampleOut {
  tokenId: number;
  /** Present when the request asked for `logprobs`: of the raw row, vLLM's default `logprobs_mode`. */
  logprobs: TokenLogprobs | null;
}

/** The sampler's wasm exports (assembly/sampler.ts), beside the loader's own. */
interface SamplerExports {
  samplerNumFields(): number;
  samplerScratchBytes(vp: number): number;
  samplerRun(s: number, r0: number, r1: number, v: number, vp: number, logits: number, params: number, pool: number, scratch: number, first: number, last: number): void;
}

/** A grow-only block of wasm memory. */
class Region {
  ptr = 0;
  bytes = 0;
  constructor(private readonly core: Core) {}
  ensure(bytes: number): number {
    if (bytes > this.bytes) {
      // The new block first: if alloc throws, the old block and its size stay as they were (freeing first and
      // then failing left `bytes` grown over a null pointer, so the next smaller ask wrote at address 0).
      const size = Math.ceil(bytes / 65536) * 65536;
      const ptr = this.core.alloc(size);
      this.core.free(this.ptr);
      this.ptr = ptr;
      this.bytes = size;
    }
    return this.ptr;
  }
  dispose(): void {
    this.core.free(this.ptr);
    this.ptr = this.bytes = 0;
  }
}

/** The logit a forced token gets (vLLM's thinking-budget state sets 1e9): every other token's probability is 0. */
const FORCED_LOGIT = 1e9;

/** Where a row's structured-outputs bitmask is applied. */
export interface MaskPlace {
  /** The GPU masked the row (ops.tokenBitmask) before its argmax / top-K: the grammar edits nothing more. */
  maskedOnGpu?: boolean;
}

/**
 * True when only temperature and the top-k/top-p/min-p filters act on the row: no logprobs, masks, bias, bad words,
 * logits processors, minTokens still to reach, or penalties (a grammar's mask counts unless the GPU applied it).
 */
export function onlyFiltersApply(params: SamplingParams, numOutputTokens: number, o: MaskPlace = {}): boolean {
  return (
    params.logprobs === null &&
    (!params.structuredOutputs || !!o.maskedOnGpu) &&
    !params.logitBias?.size &&
    !params.allowedTokenIds &&
    !params.badWords?.length &&
    !params.logitsProcessors?.length &&
    numOutputTokens >= params.minTokens &&
    params.presencePenalty === 0 &&
    params.frequencyPenalty === 0 &&
    params.repetitionPenalty === 1
  );
}

/** True when the row's logits are needed on the CPU: everything but plain greedy (the GPU argmax suffices). */
export function needsLogitsRow(params: SamplingParams, numOutputTokens: number, o: MaskPlace = {}): boolean {
  return !(params.greedy && onlyFiltersApply(params, numOutputTokens, o));
}

/** A row's id lists, gathered and checked before anything is written to wasm memory. */
interface RowLists {
  prompt: ArrayLike<number>;
  output: ArrayLike<number>;
  bias: [number, number][];
  allowed: number[];
  banned: number[];
  k: number; // logprobs to return, -1 = none
  edits: boolean; // stage 2, 3 or a logits processor changes the row
}

export class Sampler {
  private readonly vp: number;
  private readonly scratch: number;
  private readonly logits: Region;
  private readonly params: Region;
  private readonly pool: Region;
  private readonly raw: Region;
  private readonly top: Region;

  private constructor(
    private readonly core: Core,
    private readonly ex: SamplerExports,
    /** Logits per row. */
    readonly vocabSize: number,
  ) {
    this.vp = Math.ceil(vocabSize / 16) * 16;
    const bytes = ex.samplerScratchBytes(this.vp);
    this.scratch = core.alloc(bytes);
    core.u8().fill(0, this.scratch, this.scratch + bytes); // MARK and COUNT start zeroed
    [this.logits, this.params, this.pool, this.raw, this.top] = Array.from({ length: 5 }, () => new Region(core));
  }

  /** Loads core.wasm (shared) and allocates the scratch for rows of `vocabSize` logits. */
  static async create(vocabSize: number): Promise<Sampler> {
    if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
    const core = await loadCore();
    const ex = core.exports as unknown as SamplerExports;
    if (ex.samplerNumFields() !== NUM_FIELDS) throw new Error('core.wasm and src/sampling/sampler-layout.ts disagree on the sampler layout');
    return new Sampler(core, ex, vocabSize);
  }

  /**
   * Samples one token per row. `rows` is [S, V] f32, either flat or one array per row (e.g. views of a mapped
   * GPU buffer: they are copied once, into wasm memory, and left untouched). Generators advance in place.
   */
  sample(rows: Float32Array | readonly Float32Array[], reqs: readonly SamplerRequest[]): SampleOut[] {
    const S = reqs.length;
    const V = this.vocabSize;
    const vp = this.vp;
    const row = (r: number) => (rows instanceof Float32Array ? rows.subarray(r * V, (r + 1) * V) : rows[r]);
    if (rows instanceof Float32Array ? rows.length !== S * V : rows.length !== S || rows.some((x) => x.length !== V)) {
      throw new RangeError(`sample: expected ${S} logits rows of ${V}`);
    }
    if (S === 0) return [];
    const lists = reqs.map((q) => this.rowLists(q));

    // Allocate (memory may grow and detach views), then take views.
    const poolWords = lists.reduce((n, l) => n + l.prompt.length + l.output.length + 2 * l.bias.length + l.allowed.length + l.banned.length, 0);
    const logits = this.logits.ensure(vp * 4);
    const params = this.params.ensure(NUM_FIELDS * S * 4);
    const pool = this.pool.ensure(poolWords * 4);
    const raw = this.raw.ensure(lists.some((l) => l.k >= 0 && l.edits) ? vp * 4 : 0);
    const top = this.top.ensure(lists.reduce((n, l) => n + 8 * Math.max(l.k, 0), 0));
    const { f32, i32, u32 } = this.views();

    const put = (f: number, r: number) => params / 4 + f * S + r; // word index of field f, row r
    let w = pool / 4;
    const list = (f: number, r: number, ids: ArrayLike<number>) => {
      i32[put(f, r)] = w - pool / 4;
      i32[put(f + 1, r)] = ids.length;
      for (let j = 0; j < ids.length; j++) i32[w++] = ids[j];
    };
    let topAt = top;
    reqs.forEach(({ params: p, generator }, r) => {
      const l = lists[r];
      f32[put(F.temperature, r)] = p.greedy ? 0 : p.temperature;
      i32[put(F.topK, r)] = p.topK > 0 && p.topK < V ? p.topK : 0;
      f32[put(F.topP, r)] = p.topP;
      f32[put(F.minP, r)] = p.minP;
      f32[put(F.presence, r)] = p.presencePenalty;
      f32[put(F.frequency, r)] = p.frequencyPenalty;
      f32[put(F.repetition, r)] = p.repetitionPenalty;
      i32[put(F.numLogprobs, r)] = l.k;
      for (let j = 0; j < 4; j++) u32[put(F.rng + j, r)] = generator.state[j];
      list(F.prompt, r, l.prompt);
      list(F.output, r, l.output);
      list(F.bias, r, l.bias.map(([id]) => id));
      for (const [, b] of l.bias) f32[w++] = b;
      list(F.allowed, r, l.allowed);
      list(F.banned, r, l.banned);
      // Rows run one after another, so one raw copy serves all; a row nothing edits is its own raw row.
      i32[put(F.raw, r)] = l.k < 0 ? 0 : l.edits ? raw : logits;
      i32[put(F.topOut, r)] = topAt;
      topAt += 8 * Math.max(l.k, 0);
    });

    const asked: (Map<number, [number, number]> | undefined)[] = [];
    const run = (r: number, first: number, last: number) => this.ex.samplerRun(S, r, r + 1, V, vp, logits, params, pool, this.scratch, first, last);
    for (let r = 0; r < S; r++) {
      const f = this.views().f32; // a logits processor may have grown memory
      f.set(row(r), logits / 4);
      f.fill(-Infinity, logits / 4 + V, logits / 4 + vp);
      const mask = reqs[r].tokenBitmask;
      if (mask) applyTokenBitmask(f.subarray(logits / 4, logits / 4 + V), mask);
      const ids = reqs[r].params.logprobTokenIds;
      if (ids?.length) asked[r] = idLogprobs(f.subarray(logits / 4, logits / 4 + V), ids);
      const forced = reqs[r].forcedTokenId;
      if (reqs[r].params.logitsProcessors?.length) {
        run(r, 1, 2);
        this.runProcessors(reqs[r], logits);
        if (forced == null) run(r, 3, 5);
        else run(r, 3, 3);
      } else if (forced == null) {
        run(r, 1, 5);
      } else {
        run(r, 1, 3);
      }
      if (forced != null) {
        this.views().f32[logits / 4 + checkIds('forcedTokenId', [forced], V)[0]] = FORCED_LOGIT;
        run(r, 4, 5);
      }
    }

    const v = this.views();
    return reqs.map((q, r) => {
      for (let j = 0; j < 4; j++) q.generator.state[j] = v.u32[put(F.rng + j, r)];
      const tokenId = v.i32[put(F.token, r)];
      const k = lists[r].k;
      if (k < 0) return { tokenId, logprobs: null };
      const top = new Map<number, number>();
      const ranks = new Map<number, number>([[tokenId, v.i32[put(F.rank, r)]]]);
      const at = v.i32[put(F.topOut, r)] / 4;
      for (let j = 0; j < k; j++) {
        top.set(v.i32[at + j], v.f32[at + k + j]);
        ranks.set(v.i32[at + j], j + 1);
      }
      // logprobTokenIds: exactly the asked ids, with their true ranks, in place of the top-k.
      for (const [id, [lp, rank]] of asked[r] ?? []) {
        top.set(id, lp);
        ranks.set(id, rank);
      }
      return { tokenId, logprobs: { sampled: v.f32[put(F.logprob, r)], top, ranks } };
    });
  }

  /** Frees the scratch and buffers (the module itself is shared). */
  dispose(): void {
    for (const region of [this.logits, this.params, this.pool, this.raw, this.top]) region.dispose();
    this.core.free(this.scratch);
  }

  /** Gathers and range-checks a row's id lists: nothing out of vocabulary may index wasm memory. */
  private rowLists(q: SamplerRequest): RowLists {
    const p = q.params;
    const V = this.vocabSize;
    const penalised = p.presencePenalty !== 0 || p.frequencyPenalty !== 0 || p.repetitionPenalty !== 1;
    const prompt = p.repetitionPenalty !== 1 ? checkIds('promptTokenIds', q.promptTokenIds, V) : [];
    const output = penalised ? checkIds('outputTokenIds', q.outputTokenIds, V) : [];
    const bias = p.logitBias ? [...p.logitBias] : [];
    checkIds('logitBias', bias.map(([id]) => id), V);
    const allowed = p.allowedTokenIds ? checkIds('allowedTokenIds', [...new Set(p.allowedTokenIds)], V) : [];
    const banned: number[] = [];
    if (q.outputTokenIds.length < p.minTokens && q.stopTokenIds) banned.push(...checkIds('stopTokenIds', q.stopTokenIds, V));
    if (p.badWords?.length) {
      if (!q.badWordsTokenIds) throw new Error('sample: params.badWords needs badWordsTokenIds (see badWordsTokenIds())');
      for (const word of q.badWordsTokenIds) checkIds('badWords', word, V);
      banned.push(...bannedByBadWords(q.badWordsTokenIds, q.outputTokenIds));
    }
    // With logprobTokenIds the wasm stage 5 gives only the sampled token's logprob (k = 0); the ids come from TS.
    const k = p.logprobs === null ? -1 : p.logprobTokenIds?.length ? 0 : p.logprobs < 0 ? V : Math.min(p.logprobs, V);
    const edits = penalised || bias.length + allowed.length + banned.length > 0 || !!p.logitsProcessors?.length || q.forcedTokenId != null;
    return { prompt, output, bias, allowed, banned, k, edits };
  }

  private runProcessors(q: SamplerRequest, ptr: number): void {
    for (const proc of q.params.logitsProcessors ?? []) {
      // A fresh view each time: a processor may grow wasm memory (e.g. by tokenizing), detaching old views.
      const view = new Float32Array(this.core.exports.memory.buffer, ptr, this.vocabSize);
      const out = proc(q.outputTokenIds, view);
      if (out === view) continue;
      if (!(out instanceof Float32Array) || out.length !== this.vocabSize) {
        throw new InvalidArgumentError('logitsProcessors', `logitsProcessors must return a Float32Array of ${this.vocabSize} logits`);
      }
      new Float32Array(this.core.exports.memory.buffer, ptr, this.vocabSize).set(out);
    }
  }

  private views() {
    const buf = this.core.exports.memory.buffer;
    return { f32: new Float32Array(buf), i32: new Int32Array(buf), u32: new Uint32Array(buf) };
  }
}

/**
 * Sets the logits of the tokens `mask` does not allow to -inf (bit t % 32 of word t >> 5 set = allowed). Words of
 * all ones, most of a JSON string's, are skipped whole.
 */
export function applyTokenBitmask(row: Float32Array, mask: Int32Array): void {
  const V = row.length;
  if (mask.length < Math.ceil(V / 32)) throw new RangeError(`tokenBitmask has ${mask.length} words; ${Math.ceil(V / 32)} needed for ${V} logits`);
  for (let w = 0, base = 0; base < V; w++, base += 32) {
    const bits = mask[w];
    if (bits === -1) continue;
    const end = Math.min(32, V - base);
    for (let b = 0; b < end; b++) if (((bits >>> b) & 1) === 0) row[base + b] = -Infinity;
  }
}

/**
 * The logprob and rank of each of `ids` in the raw row (vLLM's logprob_token_ids): id -> [logprob, rank], the rank
 * being the number of tokens whose logit is >= its own (as the sampler ranks the sampled token). One pass over the
 * row, a binary search among the sorted asked logits per token: O(V log m).
 */
export function idLogprobs(row: Float32Array, ids: readonly number[]): Map<number, [number, number]> {
  const V = row.length;
  checkIds('logprobTokenIds', ids, V);
  const lse = logSumExp(row);
  const asked = [...new Set(ids)];
  const sorted = Float64Array.from(asked, (id) => row[id]).sort();
  // counts[j]: tokens whose logit is >= sorted[j] and < sorted[j + 1]; suffix sums give each rank.
  const counts = new Float64Array(sorted.length);
  for (let i = 0; i < V; i++) {
    const x = row[i];
    if (!(x >= sorted[0])) continue;
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (sorted[mid] <= x) lo = mid;
      else hi = mid - 1;
    }
    counts[lo]++;
  }
  for (let j = sorted.length - 2; j >= 0; j--) counts[j] += counts[j + 1];
  const out = new Map<number, [number, number]>();
  for (const id of ids) {
    const j = sorted.indexOf(row[id]);
    out.set(id, [row[id] - lse, counts[j]]);
  }
  return out;
}

/** Throws unless every id is an integer in [0, V). */
function checkIds<T extends ArrayLike<number>>(field: string, ids: T, V: number): T {
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) {
      throw new InvalidArgumentError(field, `${field} contains token id ${id}, out of vocabulary [0, ${V}).`);
    }
  }
  return ids;
}
