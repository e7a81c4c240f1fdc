/**
 * Maps requests to KV-cache blocks (vLLM V1's `kv_cache_manager.py`). Callers see block ids only; "no room" is a
 * null return so the scheduler can preempt. Imports nothing GPU-related.
 *
 * Token t of a request lives in slot `table[floor(t / blockSize)] * blockSize + t % blockSize`, e.g. with
 * blockSize 4 and table [7, 2], token 5 is in slot 2 * 4 + 1 = 9.
 *
 * Prefix caching: a block is registered under its key (block-hash.ts) once all its tokens have been computed, i.e.
 * after the step that wrote them (`cacheBlocks`, called from the scheduler's updateFromOutput). So a hit never
 * points at KV still being written in the same step, whatever order the runner writes and reads in.
 *
 * @example
 * const kv = new KVCacheManager({ numBlocks: 64, blockSize: 16, maxModelLen: 512 });
 * const hit = kv.getComputedBlocks(req);                       // { blocks: [], numComputedTokens: 0 }
 * const table = kv.allocateSlots(req, req.numTokens, hit.blocks); // e.g. [0, 1] for a 20-token prompt
 */
import { InvalidArgumentError } from '../errors.js';
import { hashBlockTokens, type BlockHash } from './block-hash.js';
import { BlockPool, type KVCacheBlock } from './block-pool.js';
import type { Request } from './request.js';

/** Physical block ids, in table order. */
export type BlockIds = readonly number[];

/** A KV copy the GPU must perform before the step's forward pass, in list order: block `src` -> block `dst`. */
export type BlockCopy = [src: number, dst: number];

/** Prefix-cache hits found for a request not yet holding blocks. */
export interface ComputedBlocks {
  /** Cached blocks holding the request's leading tokens, in order; pass them to allocateSlots. */
  blocks: BlockIds;
  /** blocks.length * blockSize. */
  numComputedTokens: number;
}

/** Prefix-cache counters, in tokens, over first-time lookups (a preempted request's second lookup is not counted). */
export interface PrefixCacheStats {
  /** Tokens of the requests looked up. */
  queries: number;
  /** Of those, tokens found in the cache. */
  hits: number;
}

export interface KVCacheManagerOptions {
  numBlocks: number;
  /** Tokens per block. */
  blockSize: number;
  /** Default true. */
  enablePrefixCaching?: boolean;
  /** Longest sequence (prompt + output); sets `maxBlocksPerRequest`. */
  maxModelLen: number;
}

/**
 * Slots of `n` consecutive tokens starting at position `startPos`.
 *
 * @example
 * slotMapping([7, 2], 3, 3, 4); // positions 3, 4, 5 -> [31, 8, 9]
 */
export function slotMapping(blockTable: BlockIds, startPos: number, n: number, blockSize: number): number[] {
  const slots = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const p = startPos + i;
    const block = blockTable[Math.floor(p / blockSize)];
    if (block === undefined) throw new Error(`slotMapping: position ${p} is beyond the block table (${blockTable.length} blocks)`);
    slots[i] = block * blockSize + (p % blockSize);
  }
  return slots;
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

export class KVCacheManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  readonly maxModelLen: number;
  /** ceil(maxModelLen / blockSize): the widest block table a request can have. */
  readonly maxBlocksPerRequest: number;
  readonly #pool: BlockPool;
  // requestId -> its blocks, in table order.
  readonly #reqBlocks = new Map<string, KVCacheBlock[]>();
  // requestId -> keys of its full blocks so far (grown lazily as tokens arrive).
  readonly #reqHashes = new Map<string, BlockHash[]>();
  // requestId -> how many of its leading blocks are registered (or were found registered).
  readonly #numCachedBlocks = new Map<string, number>();
  #pendingCopies: BlockCopy[] = [];
  readonly #stats: PrefixCacheStats = { queries: 0, hits: 0 };

  constructor(opts: KVCacheManagerOptions) {
    for (const k of ['numBlocks', 'blockSize', 'maxModelLen'] as const) {
      if (!isPositiveInt(opts[k])) throw new InvalidArgumentError(k, `${k} must be a positive integer, got ${opts[k]}.`);
    }
    this.numBlocks = opts.numBlocks;
    this.blockSize = opts.blockSize;
    this.maxModelLen = opts.maxModelLen;
    this.enablePrefixCaching = opts.enablePrefixCaching ?? true;
    this.maxBlocksPerRequest = Math.ceil(opts.maxModelLen / opts.blockSize);
    this.#pool = new BlockPool(opts.numBlocks);
  }

  get numFreeBlocks(): number {
    return this.#pool.numFreeBlocks;
  }

  /** Fraction of blocks held by requests, 0..1 (free cached blocks count as free). */
  get usage(): number {
    return this.#pool.usage;
  }

  get prefixCacheStats(): Readonly<PrefixCacheStats> {
    return { ...this.#stats };
  }

  /** Blocks needed to hold KV for `numTokens` tokens. */
  numBlocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * Longest cached prefix of a request holding no blocks, in whole blocks. Never the whole sequence: the last token
   * is always recomputed, since the step needs its logits. Refcounts are untouched until allocateSlots.
   */
  getComputedBlocks(req: Request): ComputedBlocks {
    if (!this.enablePrefixCaching) return { blocks: [], numComputedTokens: 0 };
    const hashes = this.#hashesOf(req);
    const maxBlocks = Math.floor((req.numTokens - 1) / this.blockSize);
    const blocks: number[] = [];
    for (let i = 0; i < maxBlocks; i++) {
      const b = this.#pool.getCachedBlock(hashes[i], req.allTokenIds, i * this.blockSize);
      if (!b) break;
      blocks.push(b.blockId);
    }
    const numComputedTokens = blocks.length * this.blockSize;
    if (req.numPreemptions === 0) {
      this.#stats.queries += req.numTokens;
      this.#stats.hits += numComputedTokens;
    }
    return { blocks, numComputedTokens };
  }

  /**
   * Gives `req` room for `numNewTokens` more tokens after its `numComputedTokens` (plus `computedBlocks`, the
   * prefix hits of a request holding no blocks yet). A shared block about to be written is replaced by a fresh copy
   * (copy-on-write; see takePendingCopies). Returns the request's whole block table, or null, changing nothing,
   * when the free blocks do not suffice.
   */
  allocateSlots(req: Request, numNewTokens: number, computedBlocks: BlockIds = []): BlockIds | null {
    const B = this.blockSize;
    const blocks = this.#reqBlocks.get(req.requestId) ?? [];
    if (computedBlocks.length > 0 && blocks.length > 0) {
      throw new Error(`allocateSlots: ${req.requestId} already holds blocks; prefix hits apply to a fresh request only`);
    }
    const hits = computedBlocks.map((id) => this.#pool.blocks[id]);
    const numComputed = req.numComputedTokens + hits.length * B;
    const total = numComputed + numNewTokens;
    if (total > this.maxModelLen) throw new Error(`allocateSlots: ${req.requestId} would hold ${total} tokens > maxModelLen ${this.maxModelLen}`);
    const numNew = Math.max(0, this.numBlocksFor(total) - blocks.length - hits.length);

    // Copy-on-write: blocks from the first write position on that another request shares (after fork, the last
    // partial block). The writer gets a fresh block holding a copy.
    const cow: number[] = [];
    if (numNewTokens > 0) {
      for (let j = Math.floor(numComputed / B); j < blocks.length; j++) if (blocks[j].refCnt > 1) cow.push(j);
    }
    // Hit blocks sitting in the free queue count as free but are about to be taken.
    const numRevived = hits.filter((b) => b.refCnt === 0).length;
    if (numNew + cow.length > this.#pool.numFreeBlocks - numRevived) return null;

    if (hits.length > 0) {
      this.#pool.touch(hits);
      blocks.push(...hits);
      this.#numCachedBlocks.set(req.requestId, hits.length);
    }
    for (const j of cow) {
      const [fresh] = this.#pool.getNewBlocks(1);
      this.#pendingCopies.push([blocks[j].blockId, fresh.blockId]);
      this.#pool.freeBlocks([blocks[j]]); // refCnt > 1: stays with the other holders
      blocks[j] = fresh;
    }
    blocks.push(...this.#pool.getNewBlocks(numNew));
    this.#reqBlocks.set(req.requestId, blocks);
    return blocks.map((b) => b.blockId);
  }

  /**
   * Frees the request's blocks past the one that holds its next token to compute (position numComputedTokens):
   * after speculative decoding rejected drafts, the blocks that held only rejected tokens go back to the pool.
   * Such blocks were never registered in the prefix cache (their tokens were not computed-and-known).
   */
  trimSlots(req: Request): void {
    const blocks = this.#reqBlocks.get(req.requestId);
    if (!blocks) return;
    const keep = Math.max(1, this.numBlocksFor(req.numComputedTokens + 1));
    if (blocks.length <= keep) return;
    const dropped = blocks.splice(keep);
    this.#pool.freeBlocks(dropped.reverse());
  }

  /**
   * Registers the request's full blocks whose tokens are all computed (`req.numComputedTokens`), so later requests
   * can hit them. Call after the step that computed them has run.
   */
  cacheBlocks(req: Request): void {
    if (!this.enablePrefixCaching) return;
    const blocks = this.#reqBlocks.get(req.requestId);
    if (!blocks) return;
    const B = this.blockSize;
    // (Async scheduling computes a placeholder's KV before its token is known: only known tokens are hashed.)
    const numFull = Math.min(Math.floor(Math.min(req.numComputedTokens, req.numTokens) / B), blocks.length);
    const done = this.#numCachedBlocks.get(req.requestId) ?? 0;
    if (numFull <= done) return;
    const hashes = this.#hashesOf(req);
    for (let i = done; i < numFull; i++) {
      this.#pool.cacheBlock(blocks[i], hashes[i], req.allTokenIds.slice(i * B, (i + 1) * B));
    }
    this.#numCachedBlocks.set(req.requestId, numFull);
  }

  /**
   * Releases the request's blocks, last block first: among blocks that stay cached, a sequence's tail is then evicted
   * before its head (a tail is useless without its head). Pending copies into its blocks are dropped.
   */
  free(req: Request): void {
    const blocks = this.#reqBlocks.get(req.requestId);
    this.#reqHashes.delete(req.requestId);
    this.#numCachedBlocks.delete(req.requestId);
    if (!blocks) return;
    this.#reqBlocks.delete(req.requestId);
    const own = new Set(blocks.map((b) => b.blockId));
    this.#pendingCopies = this.#pendingCopies.filter(([, dst]) => !own.has(dst));
    this.#pool.freeBlocks(blocks.slice().reverse());
  }

  /**
   * Shares all of `parent`'s blocks with `child` (refCnt + 1 each), e.g. for n > 1 or beam search. The caller gives
   * the child the parent's tokens and numComputedTokens. The first of the two to write into a shared block gets a
   * copy (copy-on-write in allocateSlots).
   */
  fork(parent: Request, child: Request): void {
    const blocks = this.#reqBlocks.get(parent.requestId);
    if (!blocks) throw new Error(`fork: ${parent.requestId} holds no blocks`);
    if (this.#reqBlocks.has(child.requestId)) throw new Error(`fork: ${child.requestId} already holds blocks`);
    this.#pool.touch(blocks);
    this.#reqBlocks.set(child.requestId, blocks.slice());
    const hashes = this.#reqHashes.get(parent.requestId);
    if (hashes) this.#reqHashes.set(child.requestId, hashes.slice());
    this.#numCachedBlocks.set(child.requestId, this.#numCachedBlocks.get(parent.requestId) ?? 0);
  }

  /** The request's block ids in table order (a copy; empty if it holds none). */
  blockTable(requestId: string): number[] {
    return (this.#reqBlocks.get(requestId) ?? []).map((b) => b.blockId);
  }

  /** Copies queued by copy-on-write since the last call; the GPU must run them in order before the next forward. */
  takePendingCopies(): BlockCopy[] {
    const out = this.#pendingCopies;
    this.#pendingCopies = [];
    return out;
  }

  /** Reference count of a block (tests and debugging). */
  refCount(blockId: number): number {
    return this.#pool.blocks[blockId].refCnt;
  }

  /** Free block ids from next-evicted to last-evicted (tests and debugging). */
  freeBlockIds(): number[] {
    return this.#pool.freeQueue.blockIds();
  }

  /** Number of blocks registered in the prefix cache, in use or free. */
  get numCachedBlocks(): number {
    return this.#pool.numCachedBlocks;
  }

  /** Forgets all cached prefixes; false (no-op) while any request holds blocks. */
  resetPrefixCache(): boolean {
    return this.#pool.resetPrefixCache();
  }

  // Keys of the request's full blocks, extended to cover its current tokens.
  #hashesOf(req: Request): BlockHash[] {
    let hashes = this.#reqHashes.get(req.requestId);
    if (!hashes) this.#reqHashes.set(req.requestId, (hashes = []));
    const B = this.blockSize;
    const ids = req.allTokenIds;
    for (let i = hashes.length; (i + 1) * B <= ids.length; i++) {
      hashes.push(hashBlockTokens(i === 0 ? null : hashes[i - 1], ids, i * B, (i + 1) * B));
    }
    return hashes;
  }
}
