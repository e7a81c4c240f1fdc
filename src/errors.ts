/** Errors thrown where input enters the library. Each message names what is wrong. */

/** A user-supplied argument (sampling parameter, request field, option) is invalid. */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError';
  constructor(
    /** The offending field, e.g. `temperature`. */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A model file (config.json, *.safetensors, tokenizer.json, ...) is missing, truncated or malformed. */
export class ModelFileError extends Error {
  override name = 'ModelFileError';
  constructor(
    /** The file's name or path as the user would recognise it. */
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** The request cannot be served with the resources configured (e.g. longer than the whole KV cache). */
export class CapacityError extends Error {
  override name = 'CapacityError';
}
