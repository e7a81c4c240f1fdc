// f32 rows to f16 (the tensor-core linear's x in half the bytes): out[r, c] = f16(x[r, c]) for r < rows, c < K,
// 8 elements a thread (K % 8 == 0); rows past the written ones keep what they held.
//
// Bindings: x    f32 [rows, K] read as vec4s
//           out  f16 [>= rows, K] as vec4<u32> (8 halves; pack2x16float: no shader-f16 needed)
//
// Dispatch: one thread per 8 elements: i = threadIndex (lib/thread.wgsl), n8 = rows K / 8 of them.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: TO_HALF_PARAMS in src/ops/elementwise.ts
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i < p.n8) {
    let a = x[2u * i];
    let b = x[2u * i + 1u];
    out[i] = vec4<u32>(pack2x16float(a.xy), pack2x16float(a.zw), pack2x16float(b.xy), pack2x16float(b.zw));
  }
}
