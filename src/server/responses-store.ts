/**
 * The Responses API store (vLLM's response_store and msg_store, on with VLLM_ENABLE_RESPONSES_API_STORE=1): each
 * stored response with the chat messages that produced it, so that `previous_response_id` continues the
 * conversation and GET / DELETE / cancel find it. In memory and bounded: at most `maxEntries` responses and
 * `maxBytes` of them (their JSON, messages included); the oldest go first when a new one does not fit, and one
 * larger than `maxBytes` on its own is not kept. Ids are the server's (random), never a client's.
 *
 * @example
 *   const store = new ResponseStore({ maxEntries: 100 });
 *   store.put(response, messages);
 *   store.get(response.id)?.response.status;
 */
import type { ChatMessageIn } from './protocol.js';
import type { ResponseObject } from './responses-protocol.js';

export interface ResponseStoreLimits {
  /** Most responses kept (default 1024). */
  maxEntries?: number;
  /** Most bytes of JSON kept, responses and their messages together (default 64 MiB). */
  maxBytes?: number;
}

export interface StoredResponse {
  response: ResponseObject;
  /** The conversation the response answered (vLLM's msg_store entry), instructions first. */
  messages: ChatMessageIn[];
  /** Cancels a background response still running; null once it has finished (or for a foreground one). */
  cancel: (() => void) | null;
}

const byteLength = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).length;

export class ResponseStore {
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly entries = new Map<string, StoredResponse & { bytes: number }>();
  private bytes = 0;

  constructor(limits: ResponseStoreLimits = {}) {
    this.maxEntries = limits.maxEntries ?? 1024;
    this.maxBytes = limits.maxBytes ?? 64 << 20;
    for (const [k, v] of Object.entries({ maxEntries: this.maxEntries, maxBytes: this.maxBytes })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`responses store ${k} must be a positive integer, got ${v}`);
    }
  }

  /** Number of responses kept. */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes kept. */
  get usedBytes(): number {
    return this.bytes;
  }

  get(id: string): StoredResponse | undefined {
    return this.entries.get(id);
  }

  /**
   * Keeps (or replaces) a response; returns false when it alone is larger than maxBytes (it is then not kept, and
   * an older version of it is dropped). Older responses are evicted until it fits.
   */
  put(response: ResponseObject, messages: ChatMessageIn[], cancel: (() => void) | null = null): boolean {
    this.delete(response.id);
    const bytes = byteLength(response) + byteLength(messages);
    if (bytes > this.maxBytes) return false;
    for (const [id] of this.entries) {
      if (this.entries.size < this.maxEntries && this.bytes + bytes <= this.maxBytes) break;
      this.delete(id);
    }
    this.entries.set(response.id, { response, messages, cancel, bytes });
    this.bytes += bytes;
    return true;
  }

  /** Replaces a kept response's object (a background one finishing), keeping its place; false if it is gone. */
  update(response: ResponseObject): boolean {
    const e = this.entries.get(response.id);
    if (!e) return false;
    const bytes = byteLength(response) + byteLength(e.messages);
    if (bytes - e.bytes > 0 && this.bytes + bytes - e.bytes > this.maxBytes) {
      // It grew past the bound: it goes to the back, evicting the oldest (or is dropped if too large alone).
      return this.put(response, e.messages, null);
    }
    this.bytes += bytes - e.bytes;
    Object.assign(e, { response, bytes, cancel: null });
    return true;
  }

  delete(id: string): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.entries.delete(id);
    this.bytes -= e.bytes;
    return true;
  }
}
