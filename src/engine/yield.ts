/**
 * Yields to the event loop so that callers can add or abort requests (and servers read sockets) between engine
 * steps. `setTimeout(0)` would do, but costs 1 ms or more per step in Node and browsers; `setImmediate` (Node,
 * Bun, Deno) and a MessageChannel message (browsers, workers) run as soon as pending I/O is handled.
 */
type Immediate = (cb: () => void) => unknown;

const immediate: Immediate | undefined = (globalThis as { setImmediate?: Immediate }).setImmediate;
let channel: MessageChannel | undefined;
const waiting: (() => void)[] = [];

export function yieldToEventLoop(): Promise<void> {
  if (immediate) return new Promise((resolve) => immediate(resolve));
  if (typeof MessageChannel !== 'undefined') {
    if (!channel) {
      channel = new MessageChannel();
      channel.port1.onmessage = () => waiting.shift()?.();
    }
    return new Promise((resolve) => {
      waiting.push(resolve);
      channel!.port2.postMessage(0);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
