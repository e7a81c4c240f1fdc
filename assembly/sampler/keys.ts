// Sort keys of logits (one u64 per token) and the two ways the sampler orders them: a full sort and an
// insertion list for the k best.

// ---- Sort keys: ascending u64 order = logit descending, then index ascending ---------------------------------
// High word: the logit's bits mapped so that a larger float gives a smaller word (+0 and -0 made equal);
// low word: the id, or the candidate index (candidates are in id order, so ties still go to the lower id).
// Equal logits give equal high words, which is how ties are detected.

// @ts-ignore: decorator
@inline export function sortKey(x: f32, id: u32): u64 {
  const bits = reinterpret<u32>(x + 0);
  const hi = bits >>> 31 ? bits : bits ^ 0x7fffffff;
  return (<u64>hi << 32) | <u64>id;
}

// @ts-ignore: decorator
@inline export function keyIndex(key: u64): i32 {
  return <i32>(key & 0xffffffff);
}

// @ts-ignore: decorator
@inline export function keyValue(key: u64): f32 {
  const hi = <u32>(key >> 32);
  return reinterpret<f32>(hi >>> 31 ? hi : hi ^ 0x7fffffff);
}

/** Sorts u64 keys ascending in place: quicksort (median of three), heapsort past a depth limit, insertion below 16. */
export function sortKeys(a: usize, n: i32): void {
  if (n > 1) quickSort(a, 0, n - 1, 2 * (32 - clz(n)));
}

// @ts-ignore: decorator
@inline function at(a: usize, i: i32): u64 {
  return load<u64>(a + (<usize>i << 3));
}

// @ts-ignore: decorator
@inline function swap(a: usize, i: i32, j: i32): void {
  const t = at(a, i);
  store<u64>(a + (<usize>i << 3), at(a, j));
  store<u64>(a + (<usize>j << 3), t);
}

function quickSort(a: usize, lo: i32, hi: i32, depth: i32): void {
  while (hi - lo > 16) {
    if (depth-- == 0) {
      heapSort(a, lo, hi);
      return;
    }
    const mid = lo + ((hi - lo) >> 1);
    if (at(a, mid) < at(a, lo)) swap(a, mid, lo);
    if (at(a, hi) < at(a, lo)) swap(a, hi, lo);
    if (at(a, hi) < at(a, mid)) swap(a, hi, mid);
    const pivot = at(a, mid);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (at(a, i) < pivot) i++;
      while (at(a, j) > pivot) j--;
      if (i <= j) swap(a, i++, j--);
    }
    // Recurse into the smaller side, loop on the larger: stack depth stays logarithmic.
    if (j - lo < hi - i) {
      quickSort(a, lo, j, depth);
      lo = i;
    } else {
      quickSort(a, i, hi, depth);
      hi = j;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    const x = at(a, i);
    let j = i;
    while (j > lo && at(a, j - 1) > x) {
      store<u64>(a + (<usize>j << 3), at(a, j - 1));
      j--;
    }
    store<u64>(a + (<usize>j << 3), x);
  }
}

function heapSort(a: usize, lo: i32, hi: i32): void {
  const n = hi - lo + 1;
  const base = a + (<usize>lo << 3);
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(base, i, n);
  for (let end = n - 1; end > 0; end--) {
    swap(base, 0, end);
    siftDown(base, 0, end);
  }
}

function siftDown(a: usize, i: i32, n: i32): void {
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && at(a, c + 1) > at(a, c)) c++;
    if (at(a, i) >= at(a, c)) return;
    swap(a, i, c);
    i = c;
  }
}

/**
 * The k best sort keys of x[0, v) into KEYS, best first, NaN skipped; returns how many (k unless NaNs leave fewer).
 * An insertion list behind a SIMD threshold test: once it is full, only a strictly larger value can enter (a
 * tie has a higher id, so it loses), and most blocks of 4 fail the test at once.
 */
export function topInsert(x: usize, v: i32, k: i32, keys: usize): i32 {
  let n = 0;
  let i = 0;
  for (; i < v && n < k; i++) {
    const y = load<f32>(x + (<usize>i << 2));
    if (y == y) insertKey(keys, n++, k, sortKey(y, <u32>i));
  }
  if (n < k) return n;
  let worst = keyValue(load<u64>(keys + (<usize>(k - 1) << 3)));
  for (; i < v && (i & 15) != 0; i++) worst = offer(x, i, keys, k, worst);
  for (; i + 16 <= v; i += 16) {
    const vw = f32x4.splat(worst);
    const at = x + (<usize>i << 2);
    const hit = v128.or(
      v128.or(f32x4.gt(v128.load(at), vw), f32x4.gt(v128.load(at, 16), vw)),
      v128.or(f32x4.gt(v128.load(at, 32), vw), f32x4.gt(v128.load(at, 48), vw)),
    );
    if (!v128.any_true(hit)) continue;
    for (let j = i; j < i + 16; j++) worst = offer(x, j, keys, k, worst);
  }
  for (; i < v; i++) worst = offer(x, i, keys, k, worst);
  return k;
}

function offer(raw: usize, i: i32, keys: usize, k: i32, worst: f32): f32 {
  const x = load<f32>(raw + (<usize>i << 2));
  if (!(x > worst)) return worst;
  insertKey(keys, k, k, sortKey(x, <u32>i));
  return keyValue(load<u64>(keys + (<usize>(k - 1) << 3)));
}

/** Inserts `key` into the sorted list keys[0, n) (n <= k), keeping at most k entries. */
function insertKey(keys: usize, n: i32, k: i32, key: u64): void {
  let j = min(n, k - 1);
  while (j > 0 && load<u64>(keys + (<usize>(j - 1) << 3)) > key) {
    store<u64>(keys + (<usize>j << 3), load<u64>(keys + (<usize>(j - 1) << 3)));
    j--;
  }
  store<u64>(keys + (<usize>j << 3), key);
}
