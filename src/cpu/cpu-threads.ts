/**
 * Threads for the CPU backend: the rows of each large matmul split between the calling thread and workers that run
 * the same kernels (build/cpu-mt.wasm, cpu.wasm built over an imported shared memory) on the same memory. A row's
 * result does not depend on who computes it, so outputs are bit for bit the single-threaded ones.
 *
 * Protocol: each worker has a control slot of SLOT_WORDS i32 in the shared memory: [seq, done, ...the matmul's
 * arguments, its op (CPU_OPS), failed]. The caller writes the arguments, bumps seq and notifies; the worker runs its
 * rows, stores done = seq and notifies; the caller waits (Atomics.wait: a worker thread, or Node's main thread) after
 * doing its own rows. A kernel that throws in a worker stores its message's UTF-8 length in `failed` and the text in
 * its panel; a worker that does not answer within STALL_FACTOR times the caller's own share (at least stallMs) is
 * taken for dead. Either makes that matmul and every later one throw, naming the worker, instead of hanging.
 * seq = -1 stops a worker. Workers start from source text (CPU_WORKER_BODY) through the platform's CpuWorkerHost,
 * so the core imports no platform API.
 */

/** Starts a worker from a script body (a platform binding's: Node worker_threads with eval, a browser Blob URL). */
export interface CpuWorkerHost {
  /** Threads worth using by default (cores). */
  readonly defaultThreads: number;
  /**
   * Runs `body` (the source of a function `(receive, send) => void`) in a new worker, where `receive(f)` calls f
   * with the first message the worker gets and `send(m)` posts m back; `onMessage` gets what the worker sends.
   */
  spawn(body: string, onMessage: (m: unknown) => void, onError: (e: unknown) => void): { postMessage(m: unknown): void; terminate(): void };
}

/** The matmul kernels a worker runs: linear (f32 activations) and linearQ8 (8-bit ones), the same arguments. */
export const CPU_OPS = { linear: 0, linearQ8: 1 } as const;
export type CpuOp = (typeof CPU_OPS)[keyof typeof CPU_OPS];

/** The worker: instantiate the kernels over the shared memory, say ready, then serve matmul calls until seq < 0. */
export const CPU_WORKER_BODY = `(receive, send) => receive(async ({ module, memory, slot }) => {
  const { exports } = await WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error('cpu-mt.wasm aborted'); } } });
  const c = slot >> 2;
  let seq = 0;
  send('ready');
  for (;;) {
    const i32 = new Int32Array(memory.buffer);
    Atomics.wait(i32, c, seq);
    seq = Atomics.load(i32, c);
    if (seq < 0) return;
    try {
      (i32[c + 14] === ${CPU_OPS.linearQ8} ? exports.linearQ8 : exports.linear)(i32[c + 2], i32[c + 3], i32[c + 4], i32[c + 5], i32[c + 6], i32[c + 7], i32[c + 8], i32[c + 9], i32[c + 10], i32[c + 11], i32[c + 12] !== 0, i32[c + 13]);
    } catch (err) {
      const text = new TextEncoder().encode(String((err && err.message) || err).slice(0, 200));
      new Uint8Array(memory.buffer).set(text, i32[c + 13]);
      Atomics.store(i32, c + 15, Math.max(1, text.length));
    }
    Atomics.store(i32, c + 1, seq);
    Atomics.notify(i32, c + 1);
  }
})`;

const SLOT_WORDS = 16;
const FAILED = 15;
/** A worker slower than this many times the caller's own share of a matmul (and than stallMs) is taken for dead. */
const STALL_FACTOR = 50;
/**
 * Matmuls of fewer multiply-adds (tokens x rows x K) run on the calling thread alone (a handoff costs ~10 us, 0.3-1 M
 * multiply-adds).
 */
const MIN_SPLIT = 1 << 19;

type LinearFn = (fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number) => void;

export class CpuThreads {
  private seq = 0;
  /** Why the threads can no longer run matmuls (a worker failed or stalled), or null. */
  private broken: Error | null = null;
  /** The least time a worker may take past the caller's own rows before it is taken for dead (ms). */
  stallMs = 30_000;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly workers: { postMessage(m: unknown): void; terminate(): void }[],
    /** Byte offsets of the workers' control slots and of their panels (f32 [4, maxK] each). */
    private readonly slots: number[],
    private readonly panels: number[],
  ) {}

  /**
   * Starts n - 1 workers over `memory` (the calling thread is the n-th). `alloc` gives shared memory for their control
   * slots and panels (f32 [4, maxK]).
   */
  static async start(host: CpuWorkerHost, module: WebAssembly.Module, memory: WebAssembly.Memory, n: number, alloc: (bytes: number) => number, maxK: number): Promise<CpuThreads> {
    const workers: { postMessage(m: unknown): void; terminate(): void }[] = [];
    const slots: number[] = [];
    const panels: number[] = [];
    try {
      await Promise.all(
        Array.from({ length: n - 1 }, () => {
          const slot = alloc(4 * SLOT_WORDS);
          new Int32Array(memory.buffer, slot, SLOT_WORDS).fill(0);
          slots.push(slot);
          panels.push(alloc(16 * maxK));
          return new Promise<void>((resolve, reject) => {
            const w = host.spawn(CPU_WORKER_BODY, (m) => (m === 'ready' ? resolve() : undefined), reject);
            workers.push(w);
            w.postMessage({ module, memory, slot });
          });
        }),
      );
    } catch (err) {
      for (const w of workers) w.terminate();
      throw err;
    }
    return new CpuThreads(memory, workers, slots, panels);
  }

  /** Threads a matmul runs on, the caller's included. */
  get count(): number {
    return this.workers.length + 1;
  }

  /** A matmul (`run`, the kernel `op` names) with its N rows split in runs of 4 between the caller and the workers. */
  linear(op: CpuOp, run: LinearFn, fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number): void {
    const parts = Math.min(this.count, Math.floor(N / 4));
    if (parts < 2 || T * N * K < MIN_SPLIT) return run(fmt, out, ldo, x, ldx, w, rowBytes, T, N, K, acc, panel);
    if (this.broken) throw this.broken;
    const per = Math.ceil(N / parts / 4) * 4;
    const i32 = new Int32Array(this.memory.buffer);
    const seq = ++this.seq;
    const started: number[] = [];
    for (let p = 1; p < parts; p++) {
      const n0 = p * per;
      const rows = Math.min(per, N - n0);
      if (rows <= 0) break;
      const c = this.slots[p - 1] >> 2;
      i32.set([fmt, out + 4 * n0, ldo, x, ldx, w + n0 * rowBytes, rowBytes, T, rows, K, acc ? 1 : 0, this.panels[p - 1], op], c + 2);
      Atomics.store(i32, c, seq);
      Atomics.notify(i32, c);
      started.push(c);
    }
    const t0 = performance.now();
    run(fmt, out, ldo, x, ldx, w, rowBytes, T, Math.min(per, N), K, acc, panel);
    const bound = Math.max(this.stallMs, STALL_FACTOR * (performance.now() - t0));
    const deadline = performance.now() + bound;
    started.forEach((c, i) => {
      for (let done = Atomics.load(i32, c + 1); done !== seq; done = Atomics.load(i32, c + 1)) {
        const left = deadline - performance.now();
        if (left <= 0) {
          this.broken = new Error(`CPU backend: worker thread ${i + 1} did not finish its rows of a ${N} x ${K} matmul within ${(bound / 1000).toFixed(1)} s of the calling thread's (it died or hangs); this runner's threads cannot go on`);
          throw this.broken;
        }
        Atomics.wait(i32, c + 1, done, left);
      }
      const failed = Atomics.load(i32, c + FAILED);
      if (failed > 0) {
        const why = new TextDecoder().decode(new Uint8Array(this.memory.buffer).slice(this.panels[i], this.panels[i] + failed));
        this.broken = new Error(`CPU backend: worker thread ${i + 1} failed in ${op === CPU_OPS.linearQ8 ? 'linearQ8' : 'linear'} (${N} x ${K}, ${T} tokens): ${why}`);
        throw this.broken;
      }
    });
  }

  /** Stops the workers. */
  stop(): void {
    const i32 = new Int32Array(this.memory.buffer);
    for (const slot of this.slots) {
      Atomics.store(i32, slot >> 2, -1);
      Atomics.notify(i32, slot >> 2);
    }
    for (const w of this.workers) w.terminate();
  }
}
