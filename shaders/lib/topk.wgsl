// Helpers of the top-K kernels (topk.wgsl, topk.merge.wgsl, topk.sum.wgsl): sortable logit keys and a workgroup
// radix select. Included (prepended) by kernels that declare `override WG` (a power of two, at most 256).
//
// Keys: sortKey(x) is a u32 ordered like x (a larger logit, a larger key), +0 and -0 equal, NaN the smallest (0),
// -inf just above it (0x007fffff). An item is the 64-bit composite (hi, lo) = (sortKey(logit), ~id): descending
// composite order is descending logit with ties to the lower id (the CPU sampler's order, assembly/sampler/keys.ts),
// and composites are unique, so "the `need` largest items" is one exact set.
//
// Radix select, 8 bits a round from the top of hi, then of lo (at most 8 rounds; it stops as soon as the bucket
// holding the need-th item is taken whole). Every thread runs:
//   selBegin(lid, need, count);
//   for (var r = 0u; r < 8u; r++) {
//     let st = workgroupUniformLoad(&sel);
//     if (st.done != 0u) { break; }
//     selClear(lid); workgroupBarrier();
//     ... selOffer(hi, lo, st) for each of its items ...
//     workgroupBarrier(); selPick(lid, st);
//   }
//   let st = workgroupUniformLoad(&sel);  // then: item taken <=> selTaken(hi, lo, st)
// Worked example (hi only, 2 rounds shown): need 3 of keys {0xC1.., 0xC1.., 0xC0.., 0xBF..}: round 0 counts
// digit 0xC1 -> 2, 0xC0 -> 1, 0xBF -> 1; from the top 2 < 3 <= 3, so the digit is 0xC0 with need 1, and its bucket
// holds exactly 1: done, prefix (0xC0000000, 0). Taken: every composite >= the prefix.

/** Sortable key of a logit: order-preserving, signed zeros equal, NaN = 0 (below everything). */
fn sortKey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) {
    return 0u;
  }
  if (a == 0u) {
    return 0x80000000u;
  }
  return select(b | 0x80000000u, ~b, b != a);
}

/** The logit of a key (-0 comes back as +0, key 0 as NaN). */
fn keyValue(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, k >= 0x80000000u));
}

struct SelState {
  hi: u32, // resolved prefix of hi (zeros below), then all of hi
  lo: u32, // resolved prefix of lo
  need: u32, // items still to take among those matching the prefix
  round: u32, // rounds done
  done: u32, // 1: every composite >= (hi, lo) is taken, nothing else
}

var<workgroup> sel: SelState;
var<workgroup> selHist: array<atomic<u32>, 256>;
var<workgroup> selScan: array<u32, WG>;

/** Thread 0 starts a select of `need` among `count` items (all of them at once when need >= count). */
fn selBegin(lid: u32, need: u32, count: u32) {
  if (lid == 0u) {
    sel = SelState(0u, 0u, need, 0u, select(0u, 1u, need >= count));
  }
}

fn selClear(lid: u32) {
  for (var b = lid; b < 256u; b += WG) {
    atomicStore(&selHist[b], 0u);
  }
}

/** Whether (hi, lo) agrees with the prefix resolved in rounds before st.round. */
fn selMatch(hi: u32, lo: u32, st: SelState) -> bool {
  let r = st.round;
  if (r == 0u) {
    return true;
  }
  if (r <= 4u) {
    return (hi & (0xffffffffu << (32u - 8u * r))) == st.hi;
  }
  return hi == st.hi && (lo & (0xffffffffu << (64u - 8u * r))) == st.lo;
}

/** Counts the item in this round's histogram (its next 8 bits) if it matches the prefix. */
fn selOffer(hi: u32, lo: u32, st: SelState) {
  if (!selMatch(hi, lo, st)) {
    return;
  }
  let r = st.round;
  let d = select((lo >> (56u - 8u * r)) & 255u, (hi >> (24u - 8u * r)) & 255u, r < 4u);
  atomicAdd(&selHist[d], 1u);
}

/**
 * Finds the digit holding the need-th item from the top: a scan over the 256 counts (thread t holds 256 / WG
 * digits, highest first), then the one thread whose digits cross `need` extends the prefix.
 */
fn selPick(lid: u32, st: SelState) {
  let per = 256u / WG;
  var local = 0u;
  for (var k = 0u; k < per; k++) {
    local += atomicLoad(&selHist[255u - (lid * per + k)]);
  }
  selScan[lid] = local;
  workgroupBarrier();
  for (var o = 1u; o < WG; o <<= 1u) {
    var v = 0u;
    if (lid >= o) {
      v = selScan[lid - o];
    }
    workgroupBarrier();
    selScan[lid] += v;
    workgroupBarrier();
  }
  var above = selScan[lid] - local; // items in higher digits than this thread's
  for (var k = 0u; k < per; k++) {
    let d = 255u - (lid * per + k);
    let c = atomicLoad(&selHist[d]);
    if (above < st.need && above + c >= st.need) {
      let need = st.need - above;
      let r = st.round;
      var next = SelState(st.hi, st.lo, need, r + 1u, select(0u, 1u, c == need || r == 7u));
      if (r < 4u) {
        next.hi = st.hi | (d << (24u - 8u * r));
      } else {
        next.lo = st.lo | (d << (56u - 8u * r));
      }
      sel = next;
    }
    above += c;
  }
}

/** After the select: whether (hi, lo) is among the `need` largest. */
fn selTaken(hi: u32, lo: u32, st: SelState) -> bool {
  return hi > st.hi || (hi == st.hi && lo >= st.lo);
}
