/**
 * Threads for the CPU backend: the rows of each large matmul, and the tokens of a large attention or gated activation,
 * split between the calling thread and workers that run the same kernels (build/cpu-mt.wasm, cpu.wasm built over an
 * imported shared memory) on the same memory. A row's or token's result does not depend on who computes it, so
 * outputs are bit for bit the single-threaded ones.
 *
 * Protocol: each worker has a control slot of SLOT_WORDS i32 in the shared memory: [seq, done, op (CPU_OPS), failed,
 * ...the kernel's arguments]. The caller writes the op and arguments, bumps seq and notifies; the worker runs its
 * share, stores done = seq and notifies; the caller waits (Atomics.wait: a worker thread, or Node's main thread) after
 * doing its own share. A kernel that throws in a worker stores its message's UTF-8 length in `failed` and the text in
 * its scratch; a worker that does not answer within STALL_FACTOR times the caller's own share (at least stallMs) is
 * taken for dead. Either makes that call and every later split one throw, naming the worker, instead of hanging.
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

/**
 * The kernels a worker runs, by number: each one's export and its arguments' types (i: i32, f: f32, b: bool), in
 * order. linear and linearQ8 split a matmul's rows, pagedAttention and gatedAct their tokens.
 */
export const CPU_OPS = { linear: 0, linearQ8: 1, pagedAttention: 2, gatedAct: 3 } as const;
export type CpuOp = (typeof CPU_OPS)[keyof typeof CPU_OPS];
const OP_SIGNATURES: readonly (readonly [string, string])[] = [
  ['linear', 'iiiiiiiiiibi'],
  ['linearQ8', 'iiiiiiiiiibi'],
  ['pagedAttention', 'iiiiiiiiiiiiiiffii'],
  ['gatedAct', 'iiiiiii'],
];

/** A control slot's words: the call's sequence number, the worker's answer, the op, its failure, the arguments. */
const SEQ = 0;
const DONE = 1;
const OP = 2;
const FAILED = 3;
const ARGS = 4;
const SLOT_WORDS = ARGS + Math.max(...OP_SIGNATURES.map(([, sig]) => sig.length));

/** The worker: instantiate the kernels over the shared memory, say ready, then serve calls until seq < 0. */
export const CPU_WORKER_BODY = `(receive, send) => receive(async ({ module, memory, slot, scratch }) => {
  const { exports } = await WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error('cpu-mt.wasm aborted'); } } });
  const ops = ${JSON.stringify(OP_SIGNATURES)};
  const c = slot >> 2;
  let seq = 0;
  send('ready');
  for (;;) {
    const i32 = new Int32Array(memory.buffer);
    const f32 = new Float32Array(memory.buffer);
    Atomics.wait(i32, c + ${SEQ}, seq);
    seq = Atomics.load(i32, c + ${SEQ});
    if (seq < 0) return;
    try {
      const [name, sig] = ops[i32[c + ${OP}]];
      const args = [...sig].map((t, k) => (t === 'f' ? f32[c + ${ARGS} + k] : t === 'b' ? i32[c + ${ARGS} + k] !== 0 : i32[c + ${ARGS} + k]));
      exports[name](...args);
    } catch (err) {
      const text = new TextEncoder().encode(String((err && err.message) || err).slice(0, 200));
      new Uint8Array(memory.buffer).set(text, scratch);
      Atomics.store(i32, c + ${FAILED}, Math.max(1, text.length));
    }
    Atomics.store(i32, c + ${DONE}, seq);
    Atomics.notify(i32, c + ${DONE});
  }
})`;

/** A worker slower than this many times the caller's own share of a call (and than stallMs) is taken for dead. */
const STALL_FACTOR = 50;
/**
 * Matmuls of fewer multiply-adds (tokens x rows x K) run on the calling thread alone (a handoff costs ~10 us, 0.3-1 M
 * multiply-adds).
 */
const MIN_SPLIT = 1 << 19;
/** Attention over fewer (query, key) pairs x heads x head size runs on the calling thread alone. */
export const MIN_SPLIT_ATTENTION = 1 << 18;
/** Gated activations of fewer values (tokens x width) run on the calling thread alone (~1 ns a value). */
export const MIN_SPLIT_GATED = 1 << 16;

type LinearFn = (fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number) => void;
type Args = readonly (number | boolean)[];

export class CpuThreads {
  private seq = 0;
  /** Why the threads can no longer run kernels (a worker failed or stalled), or null. */
  private broken: Error | null = null;
  /** The least time a worker may take past the caller's own share before it is taken for dead (ms). */
  stallMs = 30_000;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly workers: { postMessage(m: unknown): void; terminate(): void }[],
    /** Byte offsets of the workers' control slots and of their scratch (a matmul's panel, the attention's scores). */
    private readonly slots: number[],
    private readonly scratch: number[],
  ) {}

  /**
   * Starts n - 1 workers over `memory` (the calling thread is the n-th). `alloc` gives shared memory for their control
   * slots and scratch: a panel (f32 [4, maxK]) or the attention's scores (f32 [maxLen]).
   */
  static async start(host: CpuWorkerHost, module: WebAssembly.Module, memory: WebAssembly.Memory, n: number, alloc: (bytes: number) => number, maxK: number, maxLen: number): Promise<CpuThreads> {
    const workers: { postMessage(m: unknown): void; terminate(): void }[] = [];
    const slots: number[] = [];
    const scratch: number[] = [];
    try {
      await Promise.all(
        Array.from({ length: n - 1 }, () => {
          const slot = alloc(4 * SLOT_WORDS);
          new Int32Array(memory.buffer, slot, SLOT_WORDS).fill(0);
          slots.push(slot);
          const mine = alloc(Math.max(16 * maxK, 4 * maxLen));
          scratch.push(mine);
          return new Promise<void>((resolve, reject) => {
            const w = host.spawn(CPU_WORKER_BODY, (m) => (m === 'ready' ? resolve() : undefined), reject);
            workers.push(w);
            w.postMessage({ module, memory, slot, scratch: mine });
          });
        }),
      );
    } catch (err) {
      for (const w of workers) w.terminate();
      throw err;
    }
    return new CpuThreads(memory, workers, slots, scratch);
  }

  /** Threads a kernel runs on, the caller's included. */
  get count(): number {
    return this.workers.length + 1;
  }

  /** A matmul (`run`, the kernel `op` names) with its N rows split in runs of 4 between the caller and the workers. */
  linear(op: CpuOp, run: LinearFn, fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number): void {
    const parts = Math.min(this.count, Math.floor(N / 4));
    if (parts < 2 || T * N * K < MIN_SPLIT) return run(fmt, out, ldo, x, ldx, w, rowBytes, T, N, K, acc, panel);
    const per = Math.ceil(N / parts / 4) * 4;
    const calls: Args[] = [];
    for (let p = 0; p < parts; p++) {
      const n0 = p * per;
      const rows = Math.min(per, N - n0);
      if (rows <= 0) break;
      calls.push([fmt, out + 4 * n0, ldo, x, ldx, w + n0 * rowBytes, rowBytes, T, rows, K, acc, p === 0 ? panel : this.scratch[p - 1]]);
    }
    this.run(op, run as (...a: Args) => void, calls, `its rows of a ${N} x ${K} matmul`, `${N} x ${K}, ${T} tokens`);
  }

  /**
   * A kernel over T tokens (`run`, the kernel `op` names) split into runs of whole tokens between the caller and the
   * workers, each run about the same work (`work(t)`: token t's), when the total reaches `min`. argsFor(t0, t1,
   * scratch) gives the arguments of tokens t0 .. t1 - 1 (scratch: the worker's own, null for the caller). `what`
   * names the whole in errors.
   */
  tokens(op: CpuOp, run: (...a: Args) => void, T: number, work: (t: number) => number, min: number, argsFor: (t0: number, t1: number, scratch: number | null) => Args, what: string): void {
    let total = 0;
    for (let t = 0; t < T; t++) total += work(t);
    const parts = Math.min(this.count, T);
    if (parts < 2 || total < min) return run(...argsFor(0, T, null));
    const calls: Args[] = [];
    let done = 0;
    for (let p = 0, t0 = 0; p < parts && t0 < T; p++) {
      // Tokens up to this part's share of the work (at least one; the last part takes the rest).
      const goal = p === parts - 1 ? total : ((p + 1) * total) / parts;
      let t1 = t0;
      while (t1 < T && (t1 === t0 || done + work(t1) / 2 <= goal)) done += work(t1++);
      calls.push(argsFor(t0, t1, p === 0 ? null : this.scratch[p - 1]));
      t0 = t1;
    }
    this.run(op, run, calls, `its tokens of ${what}`, what);
  }

  /**
   * Runs calls[0] on the calling thread and calls[p] on worker p, then waits for the workers. `share` and `what`
   * name a worker's part and the whole in errors.
   */
  private run(op: CpuOp, fn: (...a: Args) => void, calls: readonly Args[], share: string, what: string): void {
    if (calls.length < 2) return fn(...calls[0]);
    if (this.broken) throw this.broken;
    const sig = OP_SIGNATURES[op][1];
    const i32 = new Int32Array(this.memory.buffer);
    const f32 = new Float32Array(this.memory.buffer);
    const seq = ++this.seq;
    const started: number[] = [];
    for (let p = 1; p < calls.length; p++) {
      const c = this.slots[p - 1] >> 2;
      i32[c + OP] = op;
      calls[p].forEach((a, k) => {
        if (sig[k] === 'f') f32[c + ARGS + k] = a as number;
        else i32[c + ARGS + k] = typeof a === 'boolean' ? Number(a) : a;
      });
      Atomics.store(i32, c + SEQ, seq);
      Atomics.notify(i32, c + SEQ);
      started.push(c);
    }
    const t0 = performance.now();
    fn(...calls[0]);
    const bound = Math.max(this.stallMs, STALL_FACTOR * (performance.now() - t0));
    const deadline = performance.now() + bound;
    started.forEach((c, i) => {
      for (let done = Atomics.load(i32, c + DONE); done !== seq; done = Atomics.load(i32, c + DONE)) {
        const left = deadline - performance.now();
        if (left <= 0) {
          this.broken = new Error(`CPU backend: worker thread ${i + 1} did not finish ${share} within ${(bound / 1000).toFixed(1)} s of the calling thread's (it died or hangs); this runner's threads cannot go on`);
          throw this.broken;
        }
        Atomics.wait(i32, c + DONE, done, left);
      }
      const failed = Atomics.load(i32, c + FAILED);
      if (failed > 0) {
        const why = new TextDecoder().decode(new Uint8Array(this.memory.buffer).slice(this.scratch[i], this.scratch[i] + failed));
        this.broken = new Error(`CPU backend: worker thread ${i + 1} failed in ${OP_SIGNATURES[op][0]} (${what}): ${why}`);
        throw this.broken;
      }
    });
  }

  /** Stops the workers. */
  stop(): void {
    const i32 = new Int32Array(this.memory.buffer);
    for (const slot of this.slots) {
      Atomics.store(i32, (slot >> 2) + SEQ, -1);
      Atomics.notify(i32, (slot >> 2) + SEQ);
    }
    for (const w of this.workers) w.terminate();
  }
}
