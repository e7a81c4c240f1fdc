/**
 * The caller's side of one request: an async iterator of RequestOutputs (one per engine step that produced
 * something) and `final()`, the last output. Errors of the request (bad input found late, engine failure) reject
 * both.
 */
import type { RequestOutput } from '../outputs.js';

export class RequestStream implements AsyncIterable<RequestOutput> {
  private queue: RequestOutput[] = [];
  private waiters: { resolve: (r: IteratorResult<RequestOutput>) => void; reject: (e: unknown) => void }[] = [];
  private done = false;
  private error: unknown = null;
  private last: RequestOutput | null = null;
  private finalWaiters: { resolve: (o: RequestOutput) => void; reject: (e: unknown) => void }[] = [];

  constructor(readonly requestId: string) {}

  /** Engine side: a new output; `finished` outputs end the stream. */
  push(out: RequestOutput): void {
    if (this.done) return;
    this.last = out;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: out, done: false });
    else this.queue.push(out);
    if (out.finished) this.close();
  }

  /** Engine side: the request failed. */
  fail(err: unknown): void {
    if (this.done) return;
    this.error = err;
    this.close();
  }

  get finished(): boolean {
    return this.done;
  }

  private close(): void {
    this.done = true;
    for (const w of this.waiters.splice(0)) {
      if (this.error) w.reject(this.error);
      else w.resolve({ value: undefined, done: true });
    }
    for (const f of this.finalWaiters.splice(0)) {
      if (this.error || !this.last) f.reject(this.error ?? new Error(`request ${this.requestId} produced no output`));
      else f.resolve(this.last);
    }
  }

  /** The finished output (with outputKind 'delta', the last delta). */
  final(): Promise<RequestOutput> {
    if (this.done) {
      return this.error || !this.last ? Promise.reject(this.error ?? new Error('no output')) : Promise.resolve(this.last);
    }
    return new Promise((resolve, reject) => this.finalWaiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<RequestOutput> {
    return {
      next: () => {
        const v = this.queue.shift();
        if (v) return Promise.resolve({ value: v, done: false });
        if (this.done) return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
    };
  }
}
