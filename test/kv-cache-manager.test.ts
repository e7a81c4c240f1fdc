/**
 * KV-cache manager and block pool: scenario tests with exact block ids (blockSize 4 throughout, so block b holds
 * slots 4b..4b+3).
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { hashBlockTokens } from '../src/engine/block-hash.js';
import { FreeKVCacheBlockQueue, KVCacheBlock } from '../src/engine/block-pool.js';
import { KVCacheManager, slotMapping } from '../src/engine/kv-cache-manager.js';
import { Request } from '../src/engine/request.js';

const B = 4;
const range = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);
const mkReq = (id: string, prompt: number[]) =>
  new Request({ requestId: id, promptTokenIds: prompt, samplingParams: { maxTokens: 16 }, eosTokenIds: [] });
const mkKv = (numBlocks = 10, enablePrefixCaching = true) =>
  new KVCacheManager({ numBlocks, blockSize: B, maxModelLen: 64, enablePrefixCaching });

/** What the scheduler does for a step: allocate, then (after the step) mark computed and register full blocks. */
function runChunk(kv: KVCacheManager, req: Request, n: number, hits: readonly number[] = []) {
  const table = kv.allocateSlots(req, n, hits);
  if (table === null) return null;
  req.numComputedTokens += hits.length * B + n;
  kv.cacheBlocks(req);
  return table;
}

describe('slotMapping', () => {
  it('maps positions through the block table', () => {
    expect(slotMapping([7, 2], 3, 3, 4)).toEqual([31, 8, 9]);
    expect(slotMapping([5], 0, 4, 4)).toEqual([20, 21, 22, 23]);
    expect(() => slotMapping([5], 3, 2, 4)).toThrow(/beyond the block table/);
  });
});

describe('hashBlockTokens', () => {
  it('depends on parent, tokens, order and count', () => {
    const ids = [1, 2, 3, 4, 5, 6, 7, 8];
    const h0 = hashBlockTokens(null, ids, 0, 4);
    expect(h0).toMatch(/^[0-9a-f]{16}$/);
    expect(hashBlockTokens(null, [1, 2, 3, 4], 0, 4)).toBe(h0);
    expect(hashBlockTokens(null, [2, 1, 3, 4], 0, 4)).not.toBe(h0);
    expect(hashBlockTokens(h0, ids, 4, 8)).not.toBe(hashBlockTokens(null, ids, 4, 8));
    expect(hashBlockTokens(null, [0, 0], 0, 2)).not.toBe(hashBlockTokens(null, [0, 0, 0], 0, 3));
  });

  it('has no collisions over 200k chained and sibling blocks', () => {
    const seen = new Set<string>();
    let parent: string | null = null;
    for (let i = 0; i < 100_000; i++) {
      // A chain (each block after the previous) and siblings differing in one token.
      const chained: string = hashBlockTokens(parent, [i & 7, 0, 0, 1], 0, 4);
      seen.add(chained).add(hashBlockTokens(null, [i, 0, 0, 2], 0, 4));
      parent = chained;
    }
    expect(seen.size).toBe(200_000);
  });
});

describe('FreeKVCacheBlockQueue', () => {
  it('pops from the head, removes from the middle, appends at either end', () => {
    const blocks = range(0, 5).map((i) => new KVCacheBlock(i));
    const q = new FreeKVCacheBlockQueue(blocks);
    expect(q.blockIds()).toEqual([0, 1, 2, 3, 4]);
    expect(q.popLeft().blockId).toBe(0);
    q.remove(blocks[3]);
    expect(q.blockIds()).toEqual([1, 2, 4]);
    q.append(blocks[3]);
    q.appendLeft(blocks[0]);
    expect(q.blockIds()).toEqual([0, 1, 2, 4, 3]);
    expect(q.length).toBe(5);
    expect(() => q.append(blocks[2])).toThrow(/already free/);
    for (let i = 0; i < 5; i++) q.popLeft();
    expect(() => q.popLeft()).toThrow(/empty/);
    expect(() => q.remove(blocks[1])).toThrow(/not free/);
  });
});

describe('KVCacheManager', () => {
  it('validates its options', () => {
    expect(() => new KVCacheManager({ numBlocks: 0, blockSize: 4, maxModelLen: 8 })).toThrow(InvalidArgumentError);
    expect(() => new KVCacheManager({ numBlocks: 4, blockSize: 2.5, maxModelLen: 8 })).toThrow(/blockSize/);
    expect(new KVCacheManager({ numBlocks: 4, blockSize: 4, maxModelLen: 10 }).maxBlocksPerRequest).toBe(3);
  });

  it('allocates in ascending order and only when a block fills', () => {
    const kv = mkKv();
    const a = mkReq('a', range(100, 10));
    const b = mkReq('b', range(200, 5));
    expect(runChunk(kv, a, 6)).toEqual([0, 1]); // tokens 0..5
    expect(runChunk(kv, b, 5)).toEqual([2, 3]);
    expect(runChunk(kv, a, 2)).toEqual([0, 1]); // tokens 6, 7 fit in block 1
    expect(runChunk(kv, a, 2)).toEqual([0, 1, 4]); // tokens 8, 9 need a third block
    expect(kv.blockTable('a')).toEqual([0, 1, 4]);
    expect(kv.blockTable('nobody')).toEqual([]);
    expect(kv.numFreeBlocks).toBe(5);
    expect(kv.usage).toBeCloseTo(0.5);
  });

  it('returns null, changing nothing, when the free blocks do not suffice', () => {
    const kv = mkKv(3);
    const a = mkReq('a', range(0, 13));
    expect(kv.allocateSlots(a, 13)).toBeNull();
    expect(kv.numFreeBlocks).toBe(3);
    expect(kv.blockTable('a')).toEqual([]);
    expect(kv.allocateSlots(a, 12)).toEqual([0, 1, 2]);
    expect(kv.numFreeBlocks).toBe(0);
  });

  it('hits a shared 3-block prefix, never the whole sequence, and counts hit tokens', () => {
    const kv = mkKv();
    const prefix = range(1, 12);
    const a = mkReq('a', [...prefix, 50, 51]);
    expect(kv.getComputedBlocks(a)).toEqual({ blocks: [], numComputedTokens: 0 });
    expect(runChunk(kv, a, 14)).toEqual([0, 1, 2, 3]);
    expect(kv.numCachedBlocks).toBe(3); // the partial block 3 is not registered

    const b = mkReq('b', [...prefix, 60, 61, 62]);
    const hit = kv.getComputedBlocks(b);
    expect(hit).toEqual({ blocks: [0, 1, 2], numComputedTokens: 12 });
    expect(runChunk(kv, b, 3, hit.blocks)).toEqual([0, 1, 2, 4]);
    expect(b.numComputedTokens).toBe(15);
    expect([0, 1, 2, 3, 4].map((i) => kv.refCount(i))).toEqual([2, 2, 2, 1, 1]);
    expect(kv.numFreeBlocks).toBe(5);

    // Exactly the prefix: the last token must be recomputed, so only 2 blocks hit.
    const c = mkReq('c', prefix);
    expect(kv.getComputedBlocks(c)).toEqual({ blocks: [0, 1], numComputedTokens: 8 });
    // A different first block breaks the chain even though later blocks match.
    const d = mkReq('d', [9, 9, 9, 9, ...prefix.slice(4), 70]);
    expect(kv.getComputedBlocks(d).blocks).toEqual([]);

    expect(kv.prefixCacheStats).toEqual({ queries: 14 + 15 + 12 + 13, hits: 12 + 8 });
  });

  it('registers blocks only once their tokens are computed', () => {
    const kv = mkKv();
    const a = mkReq('a', range(1, 9));
    kv.allocateSlots(a, 9); // scheduled, not yet run
    expect(kv.getComputedBlocks(mkReq('b', range(1, 9))).blocks).toEqual([]);
    a.numComputedTokens = 9;
    kv.cacheBlocks(a);
    expect(kv.getComputedBlocks(mkReq('c', range(1, 9))).blocks).toEqual([0, 1]);
  });

  it('frees in reverse: tails are evicted before heads, empty blocks before cached ones', () => {
    const kv = mkKv();
    const a = mkReq('a', range(1, 14)); // blocks 0, 1, 2 full, 3 partial
    runChunk(kv, a, 14);
    expect(kv.freeBlockIds()).toEqual([4, 5, 6, 7, 8, 9]);
    kv.free(a);
    // Partial block 3 (unregistered) to the head; cached 2, 1, 0 to the tail in that order.
    expect(kv.freeBlockIds()).toEqual([3, 4, 5, 6, 7, 8, 9, 2, 1, 0]);
    expect(kv.numFreeBlocks).toBe(10);
    expect(kv.refCount(0)).toBe(0);

    // Seven fresh blocks: 3..9, then block 2 is evicted; 1 and 0 stay cached.
    const c = mkReq('c', range(500, 28));
    expect(runChunk(kv, c, 28)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(kv.numCachedBlocks).toBe(3 + 7);
    expect(runChunk(kv, mkReq('d', [600]), 1)).toEqual([2]);
    expect(kv.numCachedBlocks).toBe(2 + 7);
    expect(kv.getComputedBlocks(mkReq('e', range(1, 14)))).toEqual({ blocks: [0, 1], numComputedTokens: 8 });
  });

  it('revives a cached free block from the middle of the queue (LRU order kept for the rest)', () => {
    const kv = mkKv(6);
    const a = mkReq('a', range(1, 9)); // blocks 0, 1 full (8 tokens), 2 partial
    const b = mkReq('b', range(101, 8)); // blocks 3, 4
    runChunk(kv, a, 9);
    runChunk(kv, b, 8);
    kv.free(a);
    kv.free(b);
    expect(kv.freeBlockIds()).toEqual([2, 5, 1, 0, 4, 3]);
    const a2 = mkReq('a2', range(1, 10));
    const hit = kv.getComputedBlocks(a2);
    expect(hit.blocks).toEqual([0, 1]);
    expect(runChunk(kv, a2, 2, hit.blocks)).toEqual([0, 1, 2]);
    expect(kv.freeBlockIds()).toEqual([5, 4, 3]);
    // The least recently freed cached block goes first: b's tail (4) before b's head (3).
    expect(runChunk(kv, mkReq('x', range(900, 8)), 8)).toEqual([5, 4]);
    expect(kv.getComputedBlocks(mkReq('b2', range(101, 9))).blocks).toEqual([3]);
  });

  it('counts a hit block still in the free queue against the room for new blocks', () => {
    const kv = mkKv(3);
    const a = mkReq('a', range(1, 8)); // blocks 0, 1 (block 1 full after 8 tokens)
    runChunk(kv, a, 8);
    kv.free(a);
    const b = mkReq('b', [...range(1, 8), 9, 9, 9, 9, 9]); // 13 tokens: 2 hits + 2 new blocks
    const hit = kv.getComputedBlocks(b);
    expect(hit.blocks).toEqual([0, 1]);
    // 3 free blocks, but 2 of them are the hits: only 1 left for the 2 new blocks.
    expect(kv.allocateSlots(b, 5, hit.blocks)).toBeNull();
    expect(kv.numFreeBlocks).toBe(3);
    expect(kv.allocateSlots(b, 4, hit.blocks)).toEqual([0, 1, 2]);
  });

  it('without prefix caching: no hits, freed blocks reused last-in first-out', () => {
    const kv = mkKv(10, false);
    const a = mkReq('a', range(1, 9));
    runChunk(kv, a, 9);
    kv.free(a);
    expect(kv.freeBlockIds()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(kv.getComputedBlocks(mkReq('b', range(1, 9)))).toEqual({ blocks: [], numComputedTokens: 0 });
    expect(kv.numCachedBlocks).toBe(0);
    expect(kv.prefixCacheStats).toEqual({ queries: 0, hits: 0 });
  });

  it('does not count a preempted request’s second lookup in the stats', () => {
    const kv = mkKv();
    const a = mkReq('a', range(1, 9));
    kv.getComputedBlocks(a);
    runChunk(kv, a, 9);
    kv.free(a);
    a.numComputedTokens = 0;
    a.numPreemptions = 1;
    expect(kv.getComputedBlocks(a).numComputedTokens).toBe(8);
    expect(kv.prefixCacheStats).toEqual({ queries: 9, hits: 0 });
  });

  it('fork shares every block; the first writer into the shared partial block gets a copy', () => {
    const kv = mkKv();
    const parent = mkReq('p', range(1, 6)); // blocks 0 (full), 1 (2 of 4 slots)
    expect(runChunk(kv, parent, 6)).toEqual([0, 1]);
    const child = mkReq('c', range(1, 6));
    child.numComputedTokens = parent.numComputedTokens;
    kv.fork(parent, child);
    expect(kv.blockTable('c')).toEqual([0, 1]);
    expect([kv.refCount(0), kv.refCount(1)]).toEqual([2, 2]);
    expect(kv.numFreeBlocks).toBe(8);

    // The parent appends token 6 into shared block 1: copy 1 -> 2, parent now writes into 2.
    parent.appendOutputTokenIds(77);
    expect(runChunk(kv, parent, 1)).toEqual([0, 2]);
    expect(kv.takePendingCopies()).toEqual([[1, 2]]);
    expect(kv.takePendingCopies()).toEqual([]);
    expect([kv.refCount(0), kv.refCount(1), kv.refCount(2)]).toEqual([2, 1, 1]);

    // The child is now block 1's only holder: it writes in place, no copy.
    child.appendOutputTokenIds(88);
    expect(runChunk(kv, child, 1)).toEqual([0, 1]);
    expect(kv.takePendingCopies()).toEqual([]);

    kv.free(parent);
    expect([kv.refCount(0), kv.refCount(2)]).toEqual([1, 0]);
    kv.free(child);
    expect(kv.numFreeBlocks).toBe(10);
    expect(() => kv.fork(parent, child)).toThrow(/holds no blocks/);
  });

  it('fork at a block boundary needs no copy; a copy needs a free block', () => {
    const kv = mkKv(3);
    const p = mkReq('p', range(1, 8));
    runChunk(kv, p, 8); // blocks 0, 1, both full
    const c = mkReq('c', range(1, 8));
    c.numComputedTokens = 8;
    kv.fork(p, c);
    expect(() => kv.fork(p, c)).toThrow(/already holds/);
    p.appendOutputTokenIds(5);
    expect(runChunk(kv, p, 1)).toEqual([0, 1, 2]);
    expect(kv.takePendingCopies()).toEqual([]);
    expect([kv.refCount(0), kv.refCount(1)]).toEqual([2, 2]);

    // Now p's block 2 is partial and shared with a grandchild; no block is left for the copy.
    const g = mkReq('g', [...range(1, 8), 5]);
    g.numComputedTokens = 9;
    kv.fork(p, g);
    p.appendOutputTokenIds(6);
    expect(kv.allocateSlots(p, 1)).toBeNull();
    kv.free(c); // blocks 0, 1 still held by p and g
    expect(kv.numFreeBlocks).toBe(0);
    kv.free(g);
    expect(kv.allocateSlots(p, 1)).toEqual([0, 1, 2]); // g gone: block 2 is p's alone
    kv.free(p);
    expect(kv.numFreeBlocks).toBe(3);
  });

  it('drops a pending copy when its writer is freed before the step', () => {
    const kv = mkKv();
    const p = mkReq('p', range(1, 6));
    runChunk(kv, p, 6);
    const c = mkReq('c', range(1, 6));
    c.numComputedTokens = 6;
    kv.fork(p, c);
    c.appendOutputTokenIds(1);
    expect(kv.allocateSlots(c, 1)).toEqual([0, 2]);
    kv.free(c);
    expect(kv.takePendingCopies()).toEqual([]);
    expect([kv.refCount(0), kv.refCount(1), kv.refCount(2)]).toEqual([1, 1, 0]);
  });

  it('resets the prefix cache only when no block is in use', () => {
    const kv = mkKv();
    const a = mkReq('a', range(1, 9));
    runChunk(kv, a, 9);
    expect(kv.resetPrefixCache()).toBe(false);
    kv.free(a);
    expect(kv.resetPrefixCache()).toBe(true);
    expect(kv.numCachedBlocks).toBe(0);
    expect(kv.getComputedBlocks(mkReq('b', range(1, 9))).blocks).toEqual([]);
  });
});
