// Top-K candidates, step 3 of 4 (src/ops/topk.ts): per chunk of a row, the softmax numerators of the survivors
// and each candidate's id-order prefix of them within its chunk. With m, floor and ids from step 2's record
// (row s at out[s * R], R = 4 + 3K) and x_i = (l_i - m) * (1 / T):
//   partial[s, c] = (sum of expNeg(x_i) over i in chunk c with l_i >= floor,  number of NaN logits in chunk c)
//   out[s * R + 4 + 2K + j] = the same sum over i in chunk(ids[j]) with i < ids[j]   (candidates of chunk c)
// expNeg is the CPU sampler's exp4 (assembly/sampler/vec.ts, cephes expf): within 2 ulp on any device that rounds
// + - * correctly, unlike the built-in exp (WGSL allows 3 + 2|x| ulp). Survivors are tested on sortable keys, so
// NaN (key 0) and -inf (below any floor) drop out without float compares.
//
// Bindings: logits    f32 [S, V]
//           rowParams vec2<f32> [S]: (1 / T, min-p offset)
//           out       u32 [S, R] (reads max, floor, ids; writes in-chunk prefixes)
//           partial   vec2<f32> [S, NC]
//
// Dispatch: one workgroup of WG threads per (row, chunk), g = wid.x + wid.y * nwg.x = s * NC + c, chunks of
// CH = WG * EPT logits as in step 1. Thread t sums its EPT contiguous logits c * CH + t * EPT .. (so that thread
// order is id order), then an inclusive Hillis-Steele scan of the thread sums gives every thread's prefix;
// a candidate's thread adds the few logits before it in that thread's run.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: TOPK_PARAMS in src/ops/topk.ts
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> rowParams: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read_write> partial: array<vec2<f32>>;

/** Threads per workgroup: a power of two, at most 256. */
override WG: u32 = 256;
/** Logits per thread. */
override EPT: u32 = 16;
/** Candidates per row. */
override K: u32 = 64;

var<workgroup> scan: array<f32, WG>;
var<workgroup> nans: atomic<u32>;

/** e^x for x <= 0, 0 below -87.33654 (cephes expf: Cody-Waite by ln 2, degree-5 polynomial, as exp4). */
fn expNeg(x: f32) -> f32 {
  if (!(x >= -87.33654)) {
    return 0.0;
  }
  let n = round(x * 1.44269504088896341);
  var r = x - n * 0.693359375;
  r = r - n * -2.12194440e-4;
  var y = 1.9875691500e-4;
  y = y * r + 1.3981999507e-3;
  y = y * r + 8.3334519073e-3;
  y = y * r + 4.1665795894e-2;
  y = y * r + 1.6666665459e-1;
  y = y * r + 5.0000001201e-1;
  y = y * (r * r) + r + 1.0;
  return y * bitcast<f32>(u32(i32(n) + 127) << 23u);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.S * p.NC) {
    return;
  }
  let s = g / p.NC;
  let start = (g % p.NC) * WG * EPT;
  let len = min(WG * EPT, p.V - start);
  let row = s * p.V + start;
  let rec = s * (4u + 3u * K);
  let m = bitcast<f32>(out[rec]);
  let floorKey = sortKey(bitcast<f32>(out[rec + 1u]));
  let invT = rowParams[s].x;
  if (lid == 0u) {
    atomicStore(&nans, 0u);
  }

  var sum = 0.0;
  var nan = 0u;
  for (var e = 0u; e < EPT; e++) {
    let i = lid * EPT + e;
    if (i < len) {
      let l = logits[row + i];
      let key = sortKey(l);
      if (key == 0u) {
        nan++;
      } else if (key >= floorKey) {
        sum += expNeg((l - m) * invT);
      }
    }
  }
  scan[lid] = sum;
  workgroupBarrier();
  atomicAdd(&nans, nan);
  for (var o = 1u; o < WG; o <<= 1u) {
    var v = 0.0;
    if (lid >= o) {
      v = scan[lid - o];
    }
    workgroupBarrier();
    scan[lid] += v;
    workgroupBarrier();
  }
  if (lid == WG - 1u) {
    partial[g] = vec2<f32>(scan[lid], f32(atomicLoad(&nans)));
  }

  for (var j = lid; j < K; j += WG) {
    let id = out[rec + 4u + j];
    if (id >= start && id < start + len) {
      let q = id - start;
      let t = q / EPT;
      var pre = 0.0;
      if (t > 0u) {
        pre = scan[t - 1u];
      }
      for (var i = t * EPT; i < q; i++) {
        let l = logits[row + i];
        let key = sortKey(l);
        if (key != 0u && key >= floorKey) {
          pre += expNeg((l - m) * invT);
        }
      }
      out[rec + 4u + 2u * K + j] = bitcast<u32>(pre);
    }
  }
}
