/**
 * Scheduler scenarios with exact block ids (blockSize 4: block b holds positions 4b..4b+3 of its request), and a
 * randomized run against a fake model that keeps a simulated KV cache, so wrong block tables, slot mappings, prefix
 * hits or copies change the generated tokens.
 */
import { describe, expect, it } from 'vitest';
import { CapacityError, InvalidArgumentError } from '../src/errors.js';
import { slotMapping } from '../src/engine/kv-cache-manager.js';
import { Request, RequestStatus, type StopParamsInit } from '../src/engine/request.js';
import { Scheduler, type CacheConfig, type SchedulerConfig } from '../src/engine/scheduler.js';
import type { EngineCoreOutput, SchedulerOutput } from '../src/engine/scheduler-output.js';

const B = 4;
const EOS = 2;
const range = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);

type Config = SchedulerConfig & CacheConfig;
const mkSched = (over: Partial<Config> = {}) => {
  const c: Config = { maxNumBatchedTokens: 64, maxNumSeqs: 8, maxModelLen: 64, numBlocks: 16, blockSize: B, ...over };
  return new Scheduler(c, { numBlocks: c.numBlocks, blockSize: c.blockSize, enablePrefixCaching: c.enablePrefixCaching });
};

function mkReq(id: string, prompt: number[], sp: Partial<StopParamsInit> = {}, extra: { priority?: number; arrivalTime?: number; eosTokenIds?: number[] } = {}) {
  return new Request({
    requestId: id,
    promptTokenIds: prompt,
    samplingParams: { maxTokens: 4, ...sp },
    eosTokenIds: extra.eosTokenIds ?? [EOS],
    priority: extra.priority,
    arrivalTime: extra.arrivalTime,
  });
}

/** A deterministic "model": the next token is a hash of the whole sequence, in [3, 64) (never EOS). */
function nextToken(seq: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const t of seq) h = Math.imul(h ^ t, 0x01000193);
  return 3 + ((h >>> 0) % 61);
}

/** One engine step with the sequence-hash model; `reqs` are the live Request objects by id. */
function step(s: Scheduler, reqs: Map<string, Request>) {
  const out = s.schedule();
  const sampled = new Map<string, number[]>();
  for (const sr of out.scheduledRequests) if (sr.needsSample) sampled.set(sr.requestId, [nextToken(reqs.get(sr.requestId)!.allTokenIds)]);
  return { out, update: s.updateFromOutput(out, sampled) };
}

/** One step with scripted tokens per request. */
function stepWith(s: Scheduler, tokens: Record<string, number[]>) {
  const out = s.schedule();
  const sampled = new Map<string, number[]>();
  for (const sr of out.scheduledRequests) if (sr.needsSample) sampled.set(sr.requestId, tokens[sr.requestId] ?? [9]);
  return { out, update: s.updateFromOutput(out, sampled) };
}

/** Runs until nothing is left; returns the steps' outputs. */
function runAll(s: Scheduler, reqs: Map<string, Request>, maxSteps = 1000) {
  const outs: SchedulerOutput[] = [];
  for (let i = 0; i < maxSteps && s.hasUnfinishedRequests(); i++) outs.push(step(s, reqs).out);
  expect(s.hasUnfinishedRequests()).toBe(false);
  return outs;
}

/** The outputs a request gets when it runs alone on a roomy cache. */
function solo(prompt: number[], sp: Partial<StopParamsInit>, maxModelLen = 64) {
  const s = mkSched({ numBlocks: 64, maxModelLen });
  const r = mkReq('solo', prompt, sp);
  s.addRequest(r);
  runAll(s, new Map([['solo', r]]));
  return { tokens: r.outputTokenIds.slice(), reason: r.finishReason };
}

const track = (...rs: Request[]) => new Map(rs.map((r) => [r.requestId, r]));

describe('Scheduler: one request', () => {
  it('runs the prompt in one step, then one token per step, and frees its blocks at the length cap', () => {
    const s = mkSched();
    const r = mkReq('r', range(10, 5), { maxTokens: 3 });
    s.addRequest(r);
    const s1 = stepWith(s, { r: [100] });
    expect(s1.out).toEqual({
      scheduledRequests: [{ requestId: 'r', tokenIds: [10, 11, 12, 13, 14], startPosition: 0, blockTable: [0, 1], needsSample: true }],
      totalNumScheduledTokens: 5,
      preemptedRequestIds: [],
      finishedRequestIds: [],
      blockCopies: [],
    });
    expect(s1.update.outputs).toEqual([{ requestId: 'r', newTokenIds: [100], finishReason: null, stopReason: null, numCachedTokens: 0 }]);
    expect(r.numComputedTokens).toBe(5);
    const s2 = stepWith(s, { r: [101] });
    expect(s2.out.scheduledRequests).toEqual([{ requestId: 'r', tokenIds: [100], startPosition: 5, blockTable: [0, 1], needsSample: true }]);
    const s3 = stepWith(s, { r: [102] });
    expect(s3.out.scheduledRequests[0].tokenIds).toEqual([101]);
    expect(s3.update.outputs[0].finishReason).toBe('length');
    expect(r.status).toBe(RequestStatus.FINISHED_LENGTH_CAPPED);
    expect(r.outputTokenIds).toEqual([100, 101, 102]);
    expect(s.kvCacheManager.numFreeBlocks).toBe(16);
    expect(s.hasUnfinishedRequests()).toBe(false);
    const s4 = s.schedule();
    expect(s4.scheduledRequests).toEqual([]);
    expect(s4.finishedRequestIds).toEqual(['r']);
    expect(s.schedule().finishedRequestIds).toEqual([]);
  });
});

describe('Scheduler: stop check', () => {
  const run = (sp: Partial<StopParamsInit>, feed: number[][], extra = {}, maxModelLen = 64) => {
    const s = mkSched({ maxModelLen });
    const r = mkReq('r', [5, 6, 7], { maxTokens: 10, ...sp }, extra);
    s.addRequest(r);
    const outs: EngineCoreOutput[] = [];
    for (const f of feed) if (s.hasUnfinishedRequests()) outs.push(...stepWith(s, { r: f }).update.outputs);
    return { r, outs, last: outs[outs.length - 1] };
  };

  it('stops at EOS with stopReason null', () => {
    const { r, last } = run({}, [[5], [EOS], [9]]);
    expect(r.outputTokenIds).toEqual([5, EOS]);
    expect([last.finishReason, last.stopReason, r.status]).toEqual(['stop', null, RequestStatus.FINISHED_STOPPED]);
  });

  it('accepts several EOS ids', () => {
    const { r, last } = run({}, [[40], [9]], { eosTokenIds: [2, 40] });
    expect([r.outputTokenIds, last.finishReason]).toEqual([[40], 'stop']);
  });

  it('stops at a stop token and reports it', () => {
    const { r, last } = run({ stopTokenIds: [7] }, [[5], [7], [9]]);
    expect(r.outputTokenIds).toEqual([5, 7]);
    expect([last.finishReason, last.stopReason]).toEqual(['stop', 7]);
  });

  it('ignores EOS and stop tokens before minTokens', () => {
    const { r, last } = run({ minTokens: 3, stopTokenIds: [7] }, [[EOS], [7], [EOS], [9]]);
    expect(r.outputTokenIds).toEqual([EOS, 7, EOS]);
    expect(last.finishReason).toBe('stop');
  });

  it('ignoreEos runs through EOS to the length cap, but still stops at stop tokens', () => {
    const a = run({ ignoreEos: true, maxTokens: 3 }, [[EOS], [EOS], [EOS], [EOS]]);
    expect(a.r.params.eosTokenIds).toEqual([]);
    expect([a.r.outputTokenIds, a.last.finishReason]).toEqual([[EOS, EOS, EOS], 'length']);
    const b = run({ ignoreEos: true, stopTokenIds: [EOS] }, [[EOS]]);
    expect([b.last.finishReason, b.last.stopReason]).toEqual(['stop', EOS]);
  });

  it('reports length when the last allowed token is EOS (vLLM checks length first)', () => {
    const { last } = run({ maxTokens: 2 }, [[5], [EOS]]);
    expect(last.finishReason).toBe('length');
  });

  it('caps at maxModelLen', () => {
    const { r, last } = run({ maxTokens: null }, [[9], [9], [9], [9], [9], [9]], {}, 8);
    expect(r.numTokens).toBe(8);
    expect(last.finishReason).toBe('length');
  });

  it('keeps only the tokens up to the stop when several arrive in one step', () => {
    const { r, outs } = run({ stopTokenIds: [7] }, [[5, 7, 9]]);
    expect(r.outputTokenIds).toEqual([5, 7]);
    expect(outs).toEqual([{ requestId: 'r', newTokenIds: [5, 7], finishReason: 'stop', stopReason: 7, numCachedTokens: 0 }]);
  });

  it('rejects a missing or unexpected sample', () => {
    const s = mkSched({ maxNumBatchedTokens: 2 });
    s.addRequest(mkReq('r', [1, 3, 4]));
    const chunk = s.schedule(); // 2 of 3 prompt tokens: no sample
    expect(chunk.scheduledRequests[0].needsSample).toBe(false);
    expect(() => s.updateFromOutput(chunk, new Map([['r', [5]]]))).toThrow(/needed no sample/);
    const last = s.schedule();
    expect(() => s.updateFromOutput(last, new Map())).toThrow(/no sampled token/);
  });
});

describe('Scheduler: budget, chunked prefill, maxNumSeqs', () => {
  it('splits a long prompt over steps and schedules the running decode first', () => {
    const s = mkSched({ maxNumBatchedTokens: 8 });
    const r = mkReq('R', [3, 4, 5], { maxTokens: 10 });
    const l = mkReq('L', range(20, 20), { maxTokens: 2 });
    const reqs = track(r, l);
    s.addRequest(r);
    step(s, reqs);
    s.addRequest(l);
    const plan = () => {
      const { out } = step(s, reqs);
      return out.scheduledRequests.map((x) => [x.requestId, x.startPosition, x.tokenIds.length, x.needsSample]);
    };
    expect(plan()).toEqual([['R', 3, 1, true], ['L', 0, 7, false]]);
    expect(plan()).toEqual([['R', 4, 1, true], ['L', 7, 7, false]]);
    expect(plan()).toEqual([['R', 5, 1, true], ['L', 14, 6, true]]);
    expect(plan()).toEqual([['R', 6, 1, true], ['L', 20, 1, true]]);
    expect(l.isFinished()).toBe(true);
  });

  it('longPrefillTokenThreshold lets a later short request share the step; decodes still come first', () => {
    const s = mkSched({ maxNumBatchedTokens: 8, longPrefillTokenThreshold: 4 });
    const l = mkReq('L', range(20, 20), { maxTokens: 2 });
    const r = mkReq('R', [3, 4], { maxTokens: 10 });
    const reqs = track(l, r);
    s.addRequest(l);
    s.addRequest(r);
    const ids = () => step(s, reqs).out.scheduledRequests.map((x) => `${x.requestId}:${x.tokenIds.length}`);
    expect(ids()).toEqual(['L:4', 'R:2']);
    expect(ids()).toEqual(['R:1', 'L:4']);
    expect(ids()).toEqual(['R:1', 'L:4']);
  });

  it('never exceeds the budget and starts at most maxNumSeqs requests', () => {
    const s = mkSched({ maxNumBatchedTokens: 5, maxNumSeqs: 2 });
    const rs = ['a', 'b', 'c'].map((id, i) => mkReq(id, range(10 * i + 3, 3), { maxTokens: 2 }));
    const reqs = track(...rs);
    rs.forEach((r) => s.addRequest(r));
    const seen: string[][] = [];
    for (const out of runAll(s, reqs)) {
      expect(out.totalNumScheduledTokens).toBeLessThanOrEqual(5);
      expect(out.scheduledRequests.length).toBeLessThanOrEqual(2);
      seen.push(out.scheduledRequests.map((x) => `${x.requestId}:${x.tokenIds.length}`));
    }
    // b's prompt is split (2 + 1); a finishes in step 2, so c starts in step 3 beside b's decode.
    expect(seen).toEqual([['a:3', 'b:2'], ['a:1', 'b:1'], ['b:1', 'c:3'], ['c:1']]);
  });

  it('orders the waiting queue by priority, then arrival, under the priority policy', () => {
    const s = mkSched({ policy: 'priority', maxNumSeqs: 1 });
    const rs = [
      mkReq('a', [3], { maxTokens: 1 }, { priority: 2, arrivalTime: 0 }),
      mkReq('b', [3], { maxTokens: 1 }, { priority: 0, arrivalTime: 1 }),
      mkReq('c', [3], { maxTokens: 1 }, { priority: 1, arrivalTime: 2 }),
      mkReq('d', [3], { maxTokens: 1 }, { priority: 0, arrivalTime: 3 }),
    ];
    rs.forEach((r) => s.addRequest(r));
    expect(runAll(s, track(...rs)).map((o) => o.scheduledRequests[0].requestId)).toEqual(['b', 'd', 'c', 'a']);
  });
});

describe('Scheduler: prefix caching', () => {
  it('serves a shared 3-block prefix from the cache and reports the hit', () => {
    const s = mkSched();
    const prefix = range(30, 12);
    const a = mkReq('a', [...prefix, 50, 51], { maxTokens: 1 });
    const b = mkReq('b', [...prefix, 60], { maxTokens: 1 });
    const reqs = track(a, b);
    s.addRequest(a);
    step(s, reqs);
    s.addRequest(b);
    const { out, update } = step(s, reqs);
    expect(out.scheduledRequests).toEqual([{ requestId: 'b', tokenIds: [60], startPosition: 12, blockTable: [0, 1, 2, 3], needsSample: true }]);
    expect(update.outputs[0].numCachedTokens).toBe(12);
    expect(b.numCachedTokens).toBe(12);
    expect(update.stats).toMatchObject({ prefixCacheQueries: 14 + 13, prefixCacheHits: 12, numRunning: 0, numWaiting: 0, kvCacheUsage: 0 });
    expect(update.stats.prefixCacheHitRate).toBeCloseTo(12 / 27);
    expect(b.outputTokenIds).toEqual(solo([...prefix, 60], { maxTokens: 1 }).tokens);
  });

  it('can be switched off', () => {
    const s = mkSched({ enablePrefixCaching: false });
    const a = mkReq('a', range(30, 13), { maxTokens: 1 });
    const b = mkReq('b', range(30, 13), { maxTokens: 1 });
    const reqs = track(a, b);
    s.addRequest(a);
    step(s, reqs);
    s.addRequest(b);
    const { out } = step(s, reqs);
    expect(out.scheduledRequests[0].startPosition).toBe(0);
    expect(s.stats.prefixCacheQueries).toBe(0);
  });
});

describe('Scheduler: preemption', () => {
  it('preempts the latest request when the pool runs dry, then completes everything with unchanged outputs', () => {
    // 4 blocks of 4 tokens. A and B take 2 blocks each for their 6-token prompts and need a third at 9 tokens.
    const s = mkSched({ numBlocks: 4 });
    const a = mkReq('A', range(10, 6), { maxTokens: 8 });
    const b = mkReq('B', range(20, 6), { maxTokens: 8 });
    const c = mkReq('C', [7, 8], { maxTokens: 1 });
    const reqs = track(a, b, c);
    s.addRequest(a);
    s.addRequest(b);
    const outs: SchedulerOutput[] = [step(s, reqs).out];
    s.addRequest(c); // waits: no free block
    expect(outs[0].scheduledRequests.map((x) => x.blockTable)).toEqual([[0, 1], [2, 3]]);
    outs.push(...runAll(s, reqs));
    const plan = outs.map((o) =>
      [...o.scheduledRequests.map((x) => `${x.requestId}@${x.startPosition}+${x.tokenIds.length}:${x.blockTable.join('.')}`), ...o.preemptedRequestIds.map((id) => `preempt ${id}`)].join(' '),
    );
    expect(plan).toEqual([
      'A@0+6:0.1 B@0+6:2.3',
      'A@6+1:0.1 B@6+1:2.3',
      'A@7+1:0.1 B@7+1:2.3',
      // A needs a third block: B (admitted last) is preempted; its blocks free as 3, 2 and A takes 3.
      'A@8+1:0.1.3 preempt B',
      // B heads the waiting queue. Its first block (2) is still cached, but the 2 more it needs are not free; C
      // would fit in one block but waits behind B (first come, first served).
      'A@9+1:0.1.3',
      'A@10+1:0.1.3',
      'A@11+1:0.1.3',
      'A@12+1:0.1.3.2', // A's fourth block evicts B's cached block 2
      // A finished: B recomputes its 6 prompt and 3 output tokens from scratch, C follows.
      'B@0+9:2.3.1 C@0+2:0',
      'B@9+1:2.3.1',
      'B@10+1:2.3.1',
      'B@11+1:2.3.1',
      'B@12+1:2.3.1.0',
    ]);
    expect(b.numPreemptions).toBe(1);
    expect(s.stats.numPreemptions).toBe(1);
    for (const [r, p] of [[a, range(10, 6)], [b, range(20, 6)]] as const) {
      expect({ tokens: r.outputTokenIds, reason: r.finishReason }).toEqual(solo(p, { maxTokens: 8 }));
    }
    expect(c.finishReason).toBe('length');
    expect(s.kvCacheManager.numFreeBlocks).toBe(4);
  });

  it('priority policy: preempts the lowest priority even if already scheduled this step (FCFS would preempt the latest)', () => {
    const setup = (policy: 'fcfs' | 'priority') => {
      const s = mkSched({ numBlocks: 3, policy });
      const lo = mkReq('lo', [3, 4], { maxTokens: 4 }, { priority: 1, arrivalTime: 0 });
      const hi = mkReq('hi', range(10, 8), { maxTokens: 4 }, { priority: 0, arrivalTime: 1 });
      const reqs = track(lo, hi);
      s.addRequest(lo);
      step(s, reqs); // lo: block 0
      s.addRequest(hi);
      step(s, reqs); // lo decodes in block 0; hi: blocks 1, 2
      return { s, reqs, lo, hi };
    };
    const p = setup('priority');
    const { out } = step(p.s, p.reqs); // lo scheduled first (decode), then hi needs a block: lo is undone
    expect(out.preemptedRequestIds).toEqual(['lo']);
    expect(out.scheduledRequests.map((x) => [x.requestId, x.blockTable])).toEqual([['hi', [1, 2, 0]]]);
    expect(out.totalNumScheduledTokens).toBe(1);
    expect(p.lo.status).toBe(RequestStatus.PREEMPTED);
    runAll(p.s, p.reqs);

    const f = setup('fcfs');
    const fo = step(f.s, f.reqs).out;
    expect(fo.preemptedRequestIds).toEqual(['hi']);
    expect(fo.scheduledRequests.map((x) => x.requestId)).toEqual(['lo']);
    runAll(f.s, f.reqs);
    for (const x of [p, f]) {
      expect(x.lo.outputTokenIds).toEqual(solo([3, 4], { maxTokens: 4 }).tokens);
      expect(x.hi.outputTokenIds).toEqual(solo(range(10, 8), { maxTokens: 4 }).tokens);
      expect(x.s.kvCacheManager.numFreeBlocks).toBe(3);
    }
  });
});

describe('Scheduler: abort', () => {
  it('frees exactly the aborted requests’ blocks, waiting or running, and reports them once', () => {
    const s = mkSched({ maxNumSeqs: 2 });
    const a = mkReq('A', range(10, 9), { maxTokens: 8 }); // blocks 0, 1, 2
    const b = mkReq('B', range(30, 5), { maxTokens: 8 }); // blocks 3, 4
    const c = mkReq('C', range(50, 4), { maxTokens: 8 }); // waiting (maxNumSeqs)
    const reqs = track(a, b, c);
    [a, b, c].forEach((r) => s.addRequest(r));
    step(s, reqs);
    expect(s.kvCacheManager.numFreeBlocks).toBe(11);
    s.finishRequests(['C'], RequestStatus.FINISHED_ABORTED);
    expect([s.numWaiting, s.kvCacheManager.numFreeBlocks]).toEqual([0, 11]);
    s.finishRequests('A', RequestStatus.FINISHED_ABORTED);
    expect(s.kvCacheManager.numFreeBlocks).toBe(14);
    expect(s.kvCacheManager.blockTable('B')).toEqual([3, 4]);
    expect([a.status, a.finishReason, c.finishReason]).toEqual([RequestStatus.FINISHED_ABORTED, 'abort', 'abort']);
    s.finishRequests(['A', 'nobody'], RequestStatus.FINISHED_ABORTED); // ignored

    // Abort between schedule() and updateFromOutput(): the update skips it.
    const out = s.schedule();
    expect(out.finishedRequestIds).toEqual(['C', 'A']);
    expect(out.scheduledRequests.map((x) => x.requestId)).toEqual(['B']);
    s.finishRequests('B', RequestStatus.FINISHED_ABORTED);
    expect(s.updateFromOutput(out, new Map([['B', [9]]])).outputs).toEqual([]);
    expect(b.outputTokenIds.length).toBe(1);
    expect(s.hasUnfinishedRequests()).toBe(false);
    expect(s.kvCacheManager.numFreeBlocks).toBe(16);
    expect(s.schedule().finishedRequestIds).toEqual(['B']);
    expect(() => s.finishRequests('A', RequestStatus.RUNNING)).toThrow(InvalidArgumentError);
  });
});

describe('Scheduler: admission', () => {
  it('rejects a request that can never fit with a CapacityError naming both numbers', () => {
    const s = mkSched({ numBlocks: 4, maxModelLen: 32 });
    expect(() => s.addRequest(mkReq('p', range(0, 17), { maxTokens: 1 }))).toThrow(/needs 5 KV-cache blocks.*only 4 blocks of 4 tokens/);
    expect(() => s.addRequest(mkReq('q', range(0, 10), { maxTokens: 10 }))).toThrow(CapacityError);
    expect(() => s.addRequest(mkReq('q', range(0, 10), { maxTokens: null }))).toThrow(/needs 8 KV-cache blocks \(31 tokens/);
    expect(() => s.addRequest(mkReq('m', range(0, 33), { maxTokens: 1 }))).toThrow(/prompt of 33 tokens is longer than maxModelLen \(32\)/);
    s.addRequest(mkReq('ok', range(0, 10), { maxTokens: 7 })); // 16 tokens of KV: exactly 4 blocks
    expect(s.numWaiting).toBe(1);
    expect(() => s.addRequest(mkReq('ok', [1]))).toThrow(/already in use/);
  });

  it('validates its config and requests', () => {
    expect(() => mkSched({ maxNumBatchedTokens: 0 })).toThrow(InvalidArgumentError);
    expect(() => mkSched({ longPrefillTokenThreshold: -1 })).toThrow(/longPrefillTokenThreshold/);
    expect(() => mkSched({ policy: 'lifo' as 'fcfs' })).toThrow(/policy/);
    expect(() => mkReq('e', [])).toThrow(/promptTokenIds/);
    expect(() => mkReq('e', [1, -1])).toThrow(/index 1/);
    expect(() => mkReq('e', [1], { maxTokens: 0 })).toThrow(/maxTokens/);
    expect(() => mkReq('e', [1], { maxTokens: 2, minTokens: 3 })).toThrow(/minTokens/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Randomized invariants.

/** mulberry32: a tiny seeded PRNG, so every failure reproduces from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) };
}

/**
 * A fake model over a simulated KV cache: each slot holds (position, token). A step runs the block copies, writes every
 * scheduled token into its slot, then for each sample reads the sequence back through the block table and returns
 * `modelToken(sequence)`. A wrong table, slot, copy or prefix hit reads a wrong (position, token) and changes outputs.
 */
class FakeKVModel {
  readonly slots: ({ pos: number; tok: number } | undefined)[];
  readonly writer: (string | undefined)[];
  readonly writtenAt: number[];
  #step = 0;
  constructor(numBlocks: number, readonly blockSize: number) {
    this.slots = new Array(numBlocks * blockSize);
    this.writer = new Array(numBlocks * blockSize);
    this.writtenAt = new Array(numBlocks * blockSize).fill(-1);
  }

  run(out: SchedulerOutput, modelToken: (seq: number[]) => number): Map<string, number[]> {
    const bs = this.blockSize;
    const step = ++this.#step;
    for (const [src, dst] of out.blockCopies) {
      for (let i = 0; i < bs; i++) this.slots[dst * bs + i] = this.slots[src * bs + i];
    }
    for (const sr of out.scheduledRequests) {
      const slots = slotMapping(sr.blockTable, sr.startPosition, sr.tokenIds.length, bs);
      slots.forEach((slot, i) => {
        this.slots[slot] = { pos: sr.startPosition + i, tok: sr.tokenIds[i] };
        this.writer[slot] = sr.requestId;
        this.writtenAt[slot] = step;
      });
    }
    const sampled = new Map<string, number[]>();
    for (const sr of out.scheduledRequests) {
      if (!sr.needsSample) continue;
      const len = sr.startPosition + sr.tokenIds.length;
      const seq = slotMapping(sr.blockTable, 0, len, bs).map((slot, p) => {
        const e = this.slots[slot];
        if (!e || e.pos !== p) throw new Error(`${sr.requestId}: slot ${slot} holds ${JSON.stringify(e)}, expected position ${p}`);
        if (this.writtenAt[slot] === step && this.writer[slot] !== sr.requestId) {
          throw new Error(`${sr.requestId}: reads slot ${slot} written by ${this.writer[slot]} in the same step`);
        }
        return e.tok;
      });
      sampled.set(sr.requestId, [modelToken(seq)]);
    }
    return sampled;
  }
}

describe('Scheduler: randomized invariants', () => {
  const VOCAB = 48;
  const R_EOS = 1;
  // Sequence hash -> token in [1, VOCAB): EOS (1) about one time in 47.
  const modelToken = (seq: readonly number[]) => {
    let h = 0x811c9dc5;
    for (const t of seq) h = Math.imul(h ^ t, 0x01000193);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    return 1 + ((h >>> 0) % (VOCAB - 1));
  };

  interface Spec {
    id: string;
    prompt: number[];
    sp: StopParamsInit;
    priority: number;
    arriveAt: number;
    abortAt: number | null;
    abortMidStep: boolean;
  }

  function aloneOutputs(spec: Spec, maxModelLen: number, blockSize: number) {
    const s = new Scheduler({ maxNumBatchedTokens: 256, maxNumSeqs: 1, maxModelLen }, { numBlocks: Math.ceil(maxModelLen / blockSize), blockSize });
    const model = new FakeKVModel(s.kvCacheManager.numBlocks, blockSize);
    const r = new Request({ requestId: spec.id, promptTokenIds: spec.prompt, samplingParams: spec.sp, eosTokenIds: [R_EOS] });
    s.addRequest(r);
    while (s.hasUnfinishedRequests()) {
      const out = s.schedule();
      s.updateFromOutput(out, model.run(out, modelToken));
    }
    return { tokens: r.outputTokenIds.slice(), reason: r.finishReason, stopReason: r.stopReason };
  }

  // What the seeds exercised, summed (checked by the last test so the randomized runs stay meaningful).
  const seen = { preemptions: 0, prefixHits: 0, chunks: 0, aborts: 0, stops: 0, lengthCaps: 0 };

  for (let seed = 1; seed <= 60; seed++) {
    it(`seed ${seed}`, () => {
      const g = rng(seed);
      const blockSize = [1, 2, 4, 8][g.int(0, 3)];
      const maxModelLen = g.int(24, 48);
      const minBlocks = Math.ceil(maxModelLen / blockSize);
      const config: Config = {
        maxNumBatchedTokens: g.int(1, 40),
        maxNumSeqs: g.int(1, 6),
        maxModelLen,
        numBlocks: minBlocks + g.int(0, minBlocks),
        blockSize,
        longPrefillTokenThreshold: g.next() < 0.3 ? g.int(1, 12) : 0,
        policy: g.next() < 0.5 ? 'fcfs' : 'priority',
        enablePrefixCaching: g.next() < 0.8,
      };
      const s = mkSched(config);
      const model = new FakeKVModel(config.numBlocks, blockSize);
      const prefixes = [0, 1, 2].map(() => Array.from({ length: g.int(2, 18) }, () => g.int(2, VOCAB - 1)));
      const specs: Spec[] = Array.from({ length: g.int(8, 24) }, (_, i) => {
        const shared = g.next() < 0.6 ? prefixes[g.int(0, 2)] : [];
        const own = Array.from({ length: g.int(shared.length ? 0 : 1, 12) }, () => g.int(2, VOCAB - 1));
        const prompt = [...shared, ...own].slice(0, maxModelLen - 1);
        const maxTokens = g.next() < 0.2 ? null : g.int(1, 30);
        return {
          id: `r${i}`,
          prompt,
          sp: { maxTokens, minTokens: g.int(0, Math.min(2, maxTokens ?? 2)), ignoreEos: g.next() < 0.2, stopTokenIds: g.next() < 0.3 ? [g.int(2, VOCAB - 1)] : [] },
          priority: g.int(0, 2),
          arriveAt: g.int(0, 40),
          abortAt: g.next() < 0.15 ? g.int(0, 60) : null,
          abortMidStep: g.next() < 0.5,
        };
      });

      const reqs = new Map<string, Request>();
      const streamed = new Map<string, number[]>();
      const reasons = new Map<string, string | null>();
      const reported = new Set<string>();
      const aborted = new Set<string>();
      const abortNow = (spec: Spec) => {
        if (!reqs.get(spec.id)!.isFinished()) aborted.add(spec.id);
        s.finishRequests(spec.id, RequestStatus.FINISHED_ABORTED);
      };
      let stepNo = 0;
      for (; stepNo < 5000; stepNo++) {
        for (const spec of specs) {
          if (spec.arriveAt === stepNo) {
            const r = new Request({ requestId: spec.id, promptTokenIds: spec.prompt, samplingParams: spec.sp, eosTokenIds: [R_EOS], priority: spec.priority, arrivalTime: stepNo });
            reqs.set(spec.id, r);
            streamed.set(spec.id, []);
            s.addRequest(r);
          }
          if (spec.abortAt === stepNo && reqs.has(spec.id) && !spec.abortMidStep) abortNow(spec);
        }
        if (!s.hasUnfinishedRequests() && stepNo > 40) break;

        const out = s.schedule();
        // Budgets.
        expect(out.totalNumScheduledTokens).toBeLessThanOrEqual(config.maxNumBatchedTokens);
        expect(out.totalNumScheduledTokens).toBe(out.scheduledRequests.reduce((n, x) => n + x.tokenIds.length, 0));
        expect(out.scheduledRequests.length).toBeLessThanOrEqual(config.maxNumSeqs);
        expect(new Set(out.scheduledRequests.map((x) => x.requestId)).size).toBe(out.scheduledRequests.length);
        for (const id of out.finishedRequestIds) {
          expect(reported.has(id)).toBe(false);
          reported.add(id);
        }
        for (const sr of out.scheduledRequests) {
          const r = reqs.get(sr.requestId)!;
          if (!sr.needsSample) seen.chunks++;
          expect(sr.tokenIds.length).toBeGreaterThan(0);
          expect(sr.tokenIds).toEqual(r.allTokenIds.slice(sr.startPosition, sr.startPosition + sr.tokenIds.length));
          expect(sr.blockTable.length).toBe(Math.ceil((sr.startPosition + sr.tokenIds.length) / blockSize));
          expect(sr.needsSample).toBe(sr.startPosition + sr.tokenIds.length === r.numTokens);
        }
        // No leaks: the free blocks and the live requests' blocks make up the whole pool.
        const inUse = new Set([...reqs.keys()].flatMap((id) => s.kvCacheManager.blockTable(id)));
        expect(inUse.size + s.kvCacheManager.numFreeBlocks).toBe(config.numBlocks);

        for (const spec of specs) if (spec.abortAt === stepNo && reqs.has(spec.id) && spec.abortMidStep) abortNow(spec);
        const update = s.updateFromOutput(out, model.run(out, modelToken));
        for (const o of update.outputs) {
          streamed.get(o.requestId)!.push(...o.newTokenIds);
          if (o.finishReason) reasons.set(o.requestId, o.finishReason);
        }
      }

      expect(s.hasUnfinishedRequests()).toBe(false);
      expect(s.kvCacheManager.numFreeBlocks).toBe(config.numBlocks);
      expect(s.kvCacheManager.usage).toBe(0);
      const stats = s.stats;
      seen.preemptions += stats.numPreemptions;
      seen.prefixHits += stats.prefixCacheHits;
      seen.aborts += aborted.size;
      for (const r of reasons.values()) {
        if (r === 'stop') seen.stops++;
        if (r === 'length') seen.lengthCaps++;
      }
      for (const spec of specs) {
        const r = reqs.get(spec.id)!;
        const alone = aloneOutputs(spec, maxModelLen, blockSize);
        expect(streamed.get(spec.id)).toEqual(r.outputTokenIds);
        if (aborted.has(spec.id)) {
          expect(r.finishReason).toBe('abort');
          expect(alone.tokens.slice(0, r.numOutputTokens)).toEqual(r.outputTokenIds);
        } else {
          expect({ id: spec.id, tokens: r.outputTokenIds, reason: reasons.get(spec.id), stopReason: r.stopReason }).toEqual({
            id: spec.id,
            tokens: alone.tokens,
            reason: alone.reason,
            stopReason: alone.stopReason,
          });
        }
      }
    });
  }

  it('exercised preemption, prefix hits, chunked prefill, aborts and every finish reason', () => {
    for (const v of Object.values(seen)) expect(v).toBeGreaterThan(10);
  });
});

describe('Scheduler: async scheduling (each step planned before the previous one\'s tokens are known)', () => {
  /** Runs to the end one step ahead: schedule N + 1 after markPlaceholders(N), then apply N's tokens. */
  function runAhead(s: Scheduler, reqs: Map<string, Request>, maxSteps = 2000) {
    const outs: SchedulerOutput[] = [];
    let cur: SchedulerOutput | null = null;
    for (let i = 0; i < maxSteps && (cur || s.hasUnfinishedRequests()); i++) {
      cur ??= s.schedule();
      s.markPlaceholders(cur);
      const next = s.schedule();
      // The model sees each sequence as it is now: its previous token was appended by the last update.
      const sampled = new Map<string, number[]>();
      for (const sr of cur.scheduledRequests) if (sr.needsSample) sampled.set(sr.requestId, [nextToken(reqs.get(sr.requestId)!.allTokenIds)]);
      s.updateFromOutput(cur, sampled);
      outs.push(cur);
      cur = next.totalNumScheduledTokens > 0 ? next : null;
    }
    return outs;
  }

  const mix = () =>
    Array.from({ length: 8 }, (_, i) => mkReq(`r${i}`, range(10 + 7 * i, 2 + ((i * 5) % 11)), { maxTokens: 3 + ((i * 7) % 13), ...(i % 3 === 1 ? { stopTokenIds: [7, 11, 13] } : {}) }));

  it('plans past placeholders (token -1), ends at stop tokens and length caps with the outputs of a synchronous run', () => {
    const rs = mix();
    const s = mkSched({ numBlocks: 64 });
    for (const r of rs) s.addRequest(r);
    const outs = runAhead(s, track(...rs));
    expect(outs.some((o) => o.scheduledRequests.some((x) => x.tokenIds.includes(-1)))).toBe(true);
    for (const [i, r] of rs.entries()) {
      const ref = solo(r.promptTokenIds.slice(), { maxTokens: 3 + ((i * 7) % 13), ...(i % 3 === 1 ? { stopTokenIds: [7, 11, 13] } : {}) });
      expect({ tokens: r.outputTokenIds, reason: r.finishReason }, r.requestId).toEqual(ref);
    }
    expect(rs.some((r) => r.finishReason === 'stop')).toBe(true);
    // A request is never planned past its length cap.
    for (const o of outs) for (const x of o.scheduledRequests) expect(x.startPosition).toBeLessThan(64);
    expect(s.kvCacheManager.numFreeBlocks).toBe(64);
    expect(s.hasUnfinishedRequests()).toBe(false);
  });

  it('gives a request preempted while its token is in flight that token, and the same outputs under a tiny pool', () => {
    const rs = mix();
    const s = mkSched({ numBlocks: 7 });
    for (const r of rs) s.addRequest(r);
    runAhead(s, track(...rs));
    expect(s.stats.numPreemptions).toBeGreaterThan(0);
    for (const [i, r] of rs.entries()) {
      const ref = solo(r.promptTokenIds.slice(), { maxTokens: 3 + ((i * 7) % 13), ...(i % 3 === 1 ? { stopTokenIds: [7, 11, 13] } : {}) });
      expect({ tokens: r.outputTokenIds, reason: r.finishReason }, r.requestId).toEqual(ref);
    }
    expect(s.kvCacheManager.numFreeBlocks).toBe(7);
  });
});
