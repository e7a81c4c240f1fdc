// Paged attention for prefill chunks (flash attention's tiling on plain shader cores): the math, params and
// bindings are lib/paged_attention.wgsl's (prepended; its split-K fields are unused here).
//
// A workgroup takes a tile: up to QT consecutive tokens of one sequence at consecutive positions (a run of the flat
// batch, tiles[tile] = (first token, count)) and the GT q heads of a kv head that pieceOf's wid.x names: R = QT GT
// query rows, row r = i GT + g for token t0 + i and head h0 + g. It walks the keys the tile's rows need (from the
// first token's lo to the last token's position) KT at a time: the KT keys and values go to workgroup memory once
// for all R rows (the per-token kernels read them once per token), then
//   scores  sS[r, j] = q[r] . k[j], masked to -inf outside the row's own keys (causal and window)
//   softmax per row: the running max mS, sum lS, and the factor cS that rescales the row's earlier sums
//   values  acc[r, :] = acc[r, :] cS[r] + sum_j sS[r, j] v[j, :]
// each in its own pass between barriers; at the end out[t, h, :] = acc / lS.
//
// Prelude: as the lib's, and HD4 = D / 4 (the head's vec4s), QT and KT (multiples of 4). 128 threads.
// Threads: phase scores, 4 rows x 4 keys per item (keys kb, kb + KT / 4, ...: consecutive threads read
// consecutive key rows, padded to HD4 + 1 vec4s against bank conflicts); values, 4 rows x one vec4 column per
// item, UNITS items per thread.

const WG = 128u;

@group(0) @binding(9) var<storage, read> tiles: array<vec2<u32>>;

const R = QT * GT;
/** Padded row strides (vec4s) of the staged queries and keys. */
const QSTR = HD4 + 1u;
/** Value items (4 rows x one vec4) per thread. */
const UNITS = (R / 4u * HD4 + WG - 1u) / WG;

var<workgroup> qS: array<vec4<f32>, R * QSTR>;
var<workgroup> kS: array<vec4<f32>, KT * QSTR>;
var<workgroup> vS: array<vec4<f32>, KT * HD4>;
var<workgroup> sS: array<f32, R * KT>;
var<workgroup> mS: array<f32, R>;
var<workgroup> lS: array<f32, R>;
var<workgroup> cS: array<f32, R>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tile = tiles[wid.y];
  let t0 = tile.x;
  let count = tile.y;
  // The first token's piece gives the kv head, heads and lo; the last token's position ends the keys.
  var pc = pieceOf(vec3<u32>(wid.x, t0, 0u));
  let pos0 = positions[t0];
  pc.hi = pos0 + count - 1u;

  for (var e = lid; e < R * HD4; e += WG) {
    let r = e / HD4;
    let i = r / GT;
    let g = r % GT;
    var v = vec4<f32>(0.0);
    if (i < count && g < pc.heads) {
      v = qkv[((t0 + i) * p.qkvStride + (pc.h0 + g) * p.D) / 4u + e % HD4] * p.scale;
    }
    qS[r * QSTR + e % HD4] = v;
  }
  for (var r = lid; r < R; r += WG) {
    mS[r] = NEG_INF;
    lS[r] = 0.0;
  }
  var acc: array<vec4<f32>, UNITS * 4u>;

  for (var j0 = pc.lo; j0 <= pc.hi; j0 += KT) {
    workgroupBarrier(); // the last block's values are consumed
    for (var e = lid; e < KT * HD4; e += WG) {
      let j = e / HD4;
      let row = keyRow(pc, min(j0 + j, pc.hi)) + e % HD4;
      kS[j * QSTR + e % HD4] = loadK(row);
      vS[e] = loadV(row);
    }
    workgroupBarrier();
    // Scores, 4 rows x 4 keys per item.
    for (var e = lid; e < R / 4u * (KT / 4u); e += WG) {
      let r0 = (e / (KT / 4u)) * 4u;
      let kb = e % (KT / 4u);
      var s: array<vec4<f32>, 4>; // s[a][b]: row r0 + a, key kb + b KT / 4
      // Zeroed explicitly: lavapipe keeps a loop's var array across iterations (see paged_attention.wgsl).
      for (var a = 0u; a < 4u; a++) {
        s[a] = vec4<f32>(0.0);
      }
      for (var d = 0u; d < HD4; d++) {
        let k0 = kS[kb * QSTR + d];
        let k1 = kS[(kb + KT / 4u) * QSTR + d];
        let k2 = kS[(kb + KT / 2u) * QSTR + d];
        let k3 = kS[(kb + 3u * KT / 4u) * QSTR + d];
        for (var a = 0u; a < 4u; a++) {
          let q = qS[(r0 + a) * QSTR + d];
          s[a] += vec4<f32>(dot(q, k0), dot(q, k1), dot(q, k2), dot(q, k3));
        }
      }
      for (var a = 0u; a < 4u; a++) {
        let pos = pos0 + (r0 + a) / GT;
        var lo = 0u;
        if (p.window > 0u && pos + 1u > p.window) {
          lo = pos + 1u - p.window;
        }
        for (var b = 0u; b < 4u; b++) {
          let j = j0 + kb + b * (KT / 4u);
          sS[(r0 + a) * KT + kb + b * (KT / 4u)] = select(NEG_INF, s[a][b], j >= lo && j <= pos);
        }
      }
    }
    workgroupBarrier();
    // Online softmax, a row per thread.
    for (var r = lid; r < R; r += WG) {
      let mOld = mS[r];
      var mNew = mOld;
      for (var j = 0u; j < KT; j++) {
        mNew = max(mNew, sS[r * KT + j]);
      }
      var sum = 0.0;
      for (var j = 0u; j < KT; j++) {
        let x = sS[r * KT + j];
        let e = select(0.0, exp(x - mNew), x > NEG_INF);
        sS[r * KT + j] = e;
        sum += e;
      }
      let c = select(1.0, exp(mOld - mNew), mOld > NEG_INF);
      cS[r] = c;
      lS[r] = lS[r] * c + sum;
      mS[r] = mNew;
    }
    workgroupBarrier();
    // Values: item u of this thread is rows r0 .. r0 + 3 at vec4 column d.
    for (var u = 0u; u < UNITS; u++) {
      let e = lid + u * WG;
      if (e < R / 4u * HD4) {
        let r0 = (e / HD4) * 4u;
        let d = e % HD4;
        for (var a = 0u; a < 4u; a++) {
          acc[u * 4u + a] *= cS[r0 + a];
        }
        for (var j = 0u; j < KT; j++) {
          let v = vS[j * HD4 + d];
          for (var a = 0u; a < 4u; a++) {
            acc[u * 4u + a] += sS[(r0 + a) * KT + j] * v;
          }
        }
      }
    }
  }

  for (var u = 0u; u < UNITS; u++) {
    let e = lid + u * WG;
    if (e < R / 4u * HD4) {
      let r0 = (e / HD4) * 4u;
      let d = e % HD4;
      for (var a = 0u; a < 4u; a++) {
        let r = r0 + a;
        let i = r / GT;
        let g = r % GT;
        if (i < count && g < pc.heads) {
          out[((t0 + i) * p.nH + pc.h0 + g) * HD4 + d] = acc[u * 4u + a] / lS[r];
        }
      }
    }
  }
}
