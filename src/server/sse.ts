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
 * `shutdown`: the server's shutdown signal. The request's own signal aborts with it (so its engine requests end);
 * a stream that ends while it is aborted says why in an error event (503) before `[DONE]`, so clients can tell a
 * cut stream from a finished one.
 */
export function sseResponse(chunks: AsyncGenerator<unknown>, onCancel: () => void, shutdown?: AbortSignal): Response {
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await chunks.next();
        if (!r.done && !shutdown?.aborted) {
          controller.enqueue(event(r.value));
          return;
        }
        if (shutdown?.aborted) {
          onCancel();
          chunks.return(undefined).catch(() => {});
          controller.enqueue(event(errorBody(new HttpError(503, 'the server is shutting down: this stream was ended before it finished'))));
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
