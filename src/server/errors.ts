/**
 * HTTP errors in OpenAI's body shape, `{"error": {"message", "type", "param", "code"}}`, with vLLM's type names
 * (`BadRequestError`, `NotFoundError`, ...) and the status as `code`, as vLLM's server answers.
 *
 * @example
 * throw new HttpError(404, 'The model `gpt-4` does not exist.', 'model');
 */
import { CapacityError, InvalidArgumentError } from '../errors.js';
import { wireName } from './protocol.js';

/** vLLM's error type per status. */
const TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'AuthenticationError',
  404: 'NotFoundError',
  405: 'MethodNotAllowedError',
  408: 'RequestTimeoutError',
  413: 'RequestEntityTooLargeError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

/** An error the server answers with `status` and OpenAI's error body. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    /** The request field at fault (snake_case, as the client sent it), or null. */
    readonly param: string | null = null,
  ) {
    super(message);
  }

  get type(): string {
    return TYPES[this.status] ?? (this.status < 500 ? 'BadRequestError' : 'InternalServerError');
  }
}

/** OpenAI's error body (snake_case wire type). */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

export function errorBody(e: HttpError): ErrorBody {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.status } };
}

/**
 * Maps what a handler threw to an HttpError: the library's typed input errors become 400s naming the wire field;
 * anything else is a 500 (the message is kept: this server runs a model, not a bank).
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof InvalidArgumentError) {
    const param = wireName(err.field);
    // Messages name the camelCase field ("topP must be ..."); say it as the client wrote it.
    const message = param !== err.field ? err.message.split(err.field).join(param) : err.message;
    return new HttpError(400, message, param);
  }
  if (err instanceof CapacityError) return new HttpError(400, err.message, 'prompt');
  const message = err instanceof Error ? err.message : String(err);
  return new HttpError(500, message || 'internal server error');
}
