/**
 * Server-sent events: each chunk as `data: {json}\n\n`, then `data: [DONE]\n\n`. An error after the response has
 * started cannot change its status, so it goes out as an OpenAI error body in one more event before `[DONE]` (as
 * vLLM does). Chunks are pulled one at a time, so a slow client slows its request instead of queueing its tokens;
 * a client that stops reading (disconnects) cancels the stream, and `onCancel` aborts its requests.
 */
import { errorBody, HttpError, toHttpError } from './errors.js';

const encoder = new TextEncoder();
const event = (data: unknown) => encoder.encode(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

/**
 * `stopped`: why the server ended the request (shutdown 503, request timeout 408), or null. The request's own signal
 * aborts with those (so its engine requests end); a stream that ends once the server stopped it says why in an
 * error event before `[DONE]`, so clients can tell a cut stream from a finished one.
 */
export function sseResponse(chunks: AsyncGenerator<unknown>, onCancel: () => void, stopped: () => HttpError | null = () => null): Response {
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await chunks.next();
        const stop = stopped();
        if (!r.done && !stop) {
          controller.enqueue(event(r.value));
          return;
        }
        if (stop) {
          onCancel();
          chunks.return(undefined).catch(() => {});
          controller.enqueue(event(errorBody(stop)));
        }
      } catch (err) {
        controller.enqueue(event(errorBody(toHttpError(err))));
      }
      controller.enqueue(event('[DONE]'));
      controller.close();
    },
    cancel() {
      // Abort first: the generator is parked on its requests' next output and only returns once they end.
      onCancel();
      chunks.return(undefined).catch(() => {});
    },
  });
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}
