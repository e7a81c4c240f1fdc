/**
 * The physical KV-cache blocks (vLLM V1's `block_pool.py`): reference counts, the free queue in eviction order, and
 * the prefix-cache map from block key to block.
 *
 * A block is in exactly one of three states:
 *   - in use: refCnt > 0, in some request's block table, not in the free queue;
 *   - free and cached: refCnt = 0, in the free queue, still keyed in the cache map (a prefix hit revives it);
 *   - free and empty: refCnt = 0, in the free queue, no key.
 * Taking a block for new tokens pops the free queue's head and drops its key (eviction).
 */
import type { BlockHash } from './block-hash.js';

/** One physical block of `blockSize` token slots. Only the KV-cache manager and the pool see this type. */
export class KVCacheBlock {
  /** Requests whose block table holds this block. */
  refCnt = 0;
  /** Key in the prefix cache while this block is full and registered; null otherwise. */
  blockHash: BlockHash | null = null;
  /** The block's token ids while it is registered: a hit compares them, so a key collision can only miss. */
  tokenIds: readonly number[] | null = null;
  /** Free-queue links; null when not in the queue. */
  prevFree: KVCacheBlock | null = null;
  nextFree: KVCacheBlock | null = null;

  constructor(readonly blockId: number) {}
}

/**
 * Free blocks as a doubly linked list (vLLM V1's FreeKVCacheBlockQueue): the head is evicted first. Unlike an array
 * or deque, a cached block that a prefix hit revives is unlinked from the middle in O(1).
 */
export class FreeKVCacheBlockQueue {
  // Sentinels: head.nextFree is the first free block, tail.prevFree the last; they are never handed out.
  readonly #head = new KVCacheBlock(-1);
  readonly #tail = new KVCacheBlock(-1);
  #length = 0;

  constructor(blocks: readonly KVCacheBlock[]) {
    this.#head.nextFree = this.#tail;
    this.#tail.prevFree = this.#head;
    for (const b of blocks) this.append(b);
  }

  get length(): number {
    return this.#length;
  }

  /** Removes and returns the head (the next block to evict). */
  popLeft(): KVCacheBlock {
    const b = this.#head.nextFree!;
    if (b === this.#tail) throw new Error('FreeKVCacheBlockQueue: pop from an empty queue');
    this.remove(b);
    return b;
  }

  /** Unlinks a block from anywhere in the queue. */
  remove(b: KVCacheBlock): void {
    if (b.prevFree === null || b.nextFree === null) throw new Error(`FreeKVCacheBlockQueue: block ${b.blockId} is not free`);
    b.prevFree.nextFree = b.nextFree;
    b.nextFree.prevFree = b.prevFree;
    b.prevFree = b.nextFree = null;
    this.#length--;
  }

  /** Adds at the tail: evicted last. */
  append(b: KVCacheBlock): void {
    this.#insertAfter(this.#tail.prevFree!, b);
  }

  /** Adds at the head: evicted first. */
  appendLeft(b: KVCacheBlock): void {
    this.#insertAfter(this.#head, b);
  }

  /** Block ids from head (next evicted) to tail. */
  blockIds(): number[] {
    const ids: number[] = [];
    for (let b = this.#head.nextFree!; b !== this.#tail; b = b.nextFree!) ids.push(b.blockId);
    return ids;
  }

  #insertAfter(prev: KVCacheBlock, b: KVCacheBlock): void {
    if (b.prevFree !== null || b.nextFree !== null) throw new Error(`FreeKVCacheBlockQueue: block ${b.blockId} is already free`);
    const next = prev.nextFree!;
    b.prevFree = prev;
    b.nextFree = next;
    prev.nextFree = b;
    next.prevFree = b;
    this.#length++;
  }
}

/** `numBlocks` blocks with reference counts, the free queue and the prefix-cache map. */
export class BlockPool {
  readonly blocks: readonly KVCacheBlock[];
  readonly freeQueue: FreeKVCacheBlockQueue;
  // Key -> the one block registered under it. A second block with the same content stays unregistered.
  readonly #cached = new Map<BlockHash, KVCacheBlock>();

  constructor(readonly numBlocks: number) {
    this.blocks = Array.from({ length: numBlocks }, (_, i) => new KVCacheBlock(i));
    // Initially ids ascend from the head, so allocation order is 0, 1, 2, ...
    this.freeQueue = new FreeKVCacheBlockQueue(this.blocks);
  }

  get numFreeBlocks(): number {
    return this.freeQueue.length;
  }

  /** Fraction of blocks in use, 0..1. */
  get usage(): number {
    return 1 - this.freeQueue.length / this.numBlocks;
  }

  /** Takes n blocks from the free queue's head (evicting their cache keys), each with refCnt 1. */
  getNewBlocks(n: number): KVCacheBlock[] {
    if (n > this.freeQueue.length) throw new Error(`BlockPool: ${n} blocks requested, ${this.freeQueue.length} free`);
    const out: KVCacheBlock[] = [];
    for (let i = 0; i < n; i++) {
      const b = this.freeQueue.popLeft();
      this.#evict(b);
      b.refCnt = 1;
      out.push(b);
    }
    return out;
  }

  /** The block registered under `hash` whose tokens equal `tokenIds[start..start+blockSize)`, or null. */
  getCachedBlock(hash: BlockHash, tokenIds: readonly number[], start: number): KVCacheBlock | null {
    const b = this.#cached.get(hash);
    if (!b) return null;
    const own = b.tokenIds!;
    for (let i = 0; i < own.length; i++) if (own[i] !== tokenIds[start + i]) return null;
    return b;
  }

  /** Registers a full block under `hash`. No-op if the block is registered or another block holds the key. */
  cacheBlock(b: KVCacheBlock, hash: BlockHash, tokenIds: readonly number[]): void {
    if (b.blockHash !== null || this.#cached.has(hash)) return;
    b.blockHash = hash;
    b.tokenIds = tokenIds;
    this.#cached.set(hash, b);
  }

  /** Takes one more reference on each block; a free (cached) block leaves the free queue. */
  touch(blocks: readonly KVCacheBlock[]): void {
    for (const b of blocks) {
      if (b.refCnt === 0) this.freeQueue.remove(b);
      b.refCnt++;
    }
  }

  /**
   * Drops one reference per block; blocks reaching 0 join the free queue in the given order. Registered blocks go to
   * the tail (evicted last, LRU), unregistered ones to the head: their content can never be hit, so reusing them
   * first keeps cached prefixes alive longer (vLLM appends both to the tail).
   */
  freeBlocks(ordered: readonly KVCacheBlock[]): void {
    for (const b of ordered) {
      if (b.refCnt <= 0) throw new Error(`BlockPool: block ${b.blockId} freed more often than taken`);
      if (--b.refCnt > 0) continue;
      if (b.blockHash !== null) this.freeQueue.append(b);
      else this.freeQueue.appendLeft(b);
    }
  }

  /** Forgets every cache key (e.g. after weights change). Returns false, doing nothing, while any block is in use. */
  resetPrefixCache(): boolean {
    if (this.freeQueue.length !== this.numBlocks) return false;
    for (const b of this.blocks) this.#evict(b);
    return true;
  }

  /** Number of registered blocks (tests and stats). */
  get numCachedBlocks(): number {
    return this.#cached.size;
  }

  #evict(b: KVCacheBlock): void {
    if (b.blockHash === null) return;
    this.#cached.delete(b.blockHash);
    b.blockHash = null;
    b.tokenIds = null;
  }
}
