/**
 * The CPU backend's workers in Node (src/cpu/cpu-threads.ts): worker_threads started from the core's script body,
 * one per core by default.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CpuWorkerHost } from '../../src/cpu/cpu-threads.js';

export const nodeCpuWorkers: CpuWorkerHost = {
  defaultThreads: Math.max(1, Math.min(8, availableParallelism())),
  spawn(body, onMessage, onError) {
    const script = `const { parentPort } = require('node:worker_threads');\n(${body})((f) => parentPort.once('message', f), (m) => parentPort.postMessage(m));`;
    const worker = new Worker(script, { eval: true });
    worker.on('message', (m) => {
      // Once serving, a worker blocks in Atomics.wait between calls: it must not keep the process alive.
      if (m === 'ready') worker.unref();
      onMessage(m);
    });
    worker.on('error', onError);
    return { postMessage: (m) => worker.postMessage(m), terminate: () => void worker.terminate() };
  },
};
