/**
 * Keys for prefix caching. A full block's key hashes (its parent block's key, its token count, its token ids), so
 * equal keys mean equal token prefixes up to the block's end: block i of two prompts sharing their first
 * (i + 1) * blockSize tokens gets the same key, and one cached block serves both.
 *
 * Why a hash and not the exact token tuple: an exact key for block i must stand for all (i + 1) * blockSize tokens
 * before it, so key sizes (and hashing time) grow quadratically with the prompt; interning parents into small ids
 * fixes the size but ties every key's life to its parent's. A content hash is computed once per block, in O(blockSize),
 * needs no bookkeeping, and is the same for a request preempted and recomputed.
 *
 * Collisions: two independent 32-bit lanes (a murmur3-style mix and FNV-1a over the token bytes, each seeded by the
 * parent's lane and finalised with fmix32 over the count) give a 64-bit key, so two distinct prefixes collide with
 * probability ~2^-64 per pair (~3e-8 for a million cached blocks). A hit also compares the block's token ids
 * (block-pool `getCachedBlock`), so a collision could only misserve a block whose own tokens match exactly and whose
 * parent key collided; vLLM's default (Python `hash`, 64 bits, no check) accepts more.
 */

/** 16 hex characters: lane A then lane B. A string so it can key a Map. */
export type BlockHash = string;

const SEED_A = 0x9747b28c;
const SEED_B = 0x811c9dc5; // FNV-1a offset basis
const FNV_PRIME = 0x01000193;

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const hex8 = (h: number): string => (h >>> 0).toString(16).padStart(8, '0');

/**
 * Key of the block holding `tokenIds[start..end)` after the block keyed `parent` (null for a sequence's first block).
 *
 * @example
 * const h0 = hashBlockTokens(null, ids, 0, 16);
 * const h1 = hashBlockTokens(h0, ids, 16, 32); // depends on ids[0..32)
 */
export function hashBlockTokens(parent: BlockHash | null, tokenIds: readonly number[], start: number, end: number): BlockHash {
  let a = parent === null ? SEED_A : parseInt(parent.slice(0, 8), 16) | 0;
  let b = parent === null ? SEED_B : parseInt(parent.slice(8, 16), 16) | 0;
  for (let i = start; i < end; i++) {
    const t = tokenIds[i] | 0;
    // Lane A: murmur3 body over one 32-bit word.
    let k = Math.imul(t, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    a ^= k;
    a = (a << 13) | (a >>> 19);
    a = (Math.imul(a, 5) + 0xe6546b64) | 0;
    // Lane B: FNV-1a over the word's four bytes.
    b = Math.imul(b ^ (t & 0xff), FNV_PRIME);
    b = Math.imul(b ^ ((t >>> 8) & 0xff), FNV_PRIME);
    b = Math.imul(b ^ ((t >>> 16) & 0xff), FNV_PRIME);
    b = Math.imul(b ^ (t >>> 24), FNV_PRIME);
  }
  const n = end - start;
  return hex8(fmix32(a ^ n)) + hex8(fmix32(b ^ Math.imul(n, 0x9e3779b1)));
}
