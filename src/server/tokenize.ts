/**
 * vLLM's POST /tokenize (a prompt, or chat messages through the template) and POST /detokenize.
 *
 * @example
 * // {"prompt": "Hello"} -> {"count": 2, "max_model_len": 2048, "tokens": [1, 15043], "token_strs": null}
 */
import { renderChat } from './chat.js';
import { checkModel, checkPromptChars, stringChars, type ServerContext } from './context.js';
import { HttpError } from './errors.js';
import type { DetokenizeRequest, TokenizeRequest } from './protocol.js';

export interface TokenizeResponse {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs: string[] | null;
}

export function tokenize(ctx: ServerContext, body: TokenizeRequest): TokenizeResponse {
  checkModel(ctx, body.model);
  if ('messages' in body) checkPromptChars(ctx, stringChars(body.messages) + stringChars(body.tools), 'messages');
  else checkPromptChars(ctx, body.prompt.length, 'prompt');
  const tokens =
    'messages' in body
      ? renderChat(ctx, body).promptTokenIds
      : ctx.tokenizer.encode(body.prompt, { addSpecialTokens: body.add_special_tokens ?? true });
  return {
    count: tokens.length,
    max_model_len: ctx.maxModelLen,
    tokens,
    token_strs: body.return_token_strs ? ctx.tokenizer.convertIdsToTokens(tokens) : null,
  };
}

export function detokenize(ctx: ServerContext, body: DetokenizeRequest): { prompt: string } {
  checkModel(ctx, body.model);
  const vocab = ctx.engine.config.vocabSize;
  const bad = body.tokens.findIndex((t) => t >= vocab);
  if (bad >= 0) throw new HttpError(400, `tokens[${bad}] = ${body.tokens[bad]} is out of vocabulary [0, ${vocab})`, 'tokens');
  return { prompt: ctx.tokenizer.decode(body.tokens) };
}
