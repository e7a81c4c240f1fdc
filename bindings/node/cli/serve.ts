/** `webgpu-llm serve [MODEL]`: the OpenAI-compatible server (vLLM's `vllm serve`) until SIGINT / SIGTERM. */
import { REASONING_PARSERS } from '../../../src/tool-calls/reasoning-parsers.js';
import { TOOL_PARSERS } from '../../../src/tool-calls/tool-parsers.js';
import { loadChatTemplate } from '../chat-template.js';
import { serve, type ServeOptions } from '../server.js';
import type { LLM } from '../index.js';
import { parseCommand, UsageError, type CommandSpec, type FlagValues } from './args.js';
import { ENGINE_FLAGS, MODEL_FLAG } from './flags.js';
import { loadModel, makeLogger, type Logger } from './load.js';

export const SERVE: CommandSpec = {
  name: 'serve',
  usage: '[MODEL] [--host 127.0.0.1] [--port 8000] [--api-key KEY] [flags]',
  summary:
    "Serves MODEL over HTTP with OpenAI's API, as vLLM's `vllm serve`: /v1/completions, /v1/chat/completions, /v1/responses, /v1/models, /tokenize, /detokenize, /health, /ping, /invocations, /metrics. OpenAI clients use http://HOST:PORT/v1 as their base URL. Loading progress and (at --log-level info) one line per request go to stderr. SIGTERM lets running requests finish (--shutdown-grace-period); Ctrl-C stops at once.",
  positionals: [{ name: 'MODEL', help: 'the model to serve (as --model)' }],
  maxPositionals: 1,
  flags: [
    MODEL_FLAG,
    { name: 'host', kind: 'string', metavar: 'HOST', help: "address to listen on: 127.0.0.1 answers this machine only; 0.0.0.0 (or '::') answers every network interface", defaultText: '127.0.0.1' },
    { name: 'port', kind: 'int', min: 0, max: 65535, help: 'TCP port to listen on (0: any free port, printed at start)', defaultText: '8000' },
    { name: 'api-key', kind: 'string', metavar: 'KEY', help: "require 'Authorization: Bearer KEY' on /v1/*", defaultText: '$VLLM_API_KEY' },
    { name: 'served-model-name', kind: 'string', metavar: 'NAME', multiple: true, help: "the name clients pass as 'model' (more names are aliases)", defaultText: 'MODEL' },
    { name: 'chat-template', kind: 'string', metavar: 'FILE|TEXT', help: "a Jinja chat template (a file or the text) used instead of the tokenizer's" },
    { name: 'trust-request-chat-template', kind: 'boolean', help: "accept a request's own chat_template (a template is code: refused with 400 by default)" },
    { name: 'allowed-origins', kind: 'string', metavar: 'ORIGIN', multiple: true, help: "answer CORS for browser pages of this origin ('*': any)", defaultText: 'no CORS' },
    { name: 'max-prompt-chars', kind: 'int', min: 1, help: 'most prompt characters a request may send to the tokenizer', defaultText: '32 x max model len' },
    { name: 'enable-auto-tool-choice', kind: 'boolean', help: "with --tool-call-parser: tool_choice 'auto' returns the calls the model writes as message.tool_calls" },
    { name: 'tool-call-parser', kind: 'choice', choices: Object.keys(TOOL_PARSERS), help: 'how tool calls are read from the text' },
    { name: 'enable-responses-store', kind: 'boolean', help: 'keep Responses API responses (previous_response_id, GET/DELETE /v1/responses/{id}, background, cancel); also VLLM_ENABLE_RESPONSES_API_STORE=1 (in memory: at most 1024 responses, 64 MiB)' },
    { name: 'reasoning-parser', kind: 'choice', choices: Object.keys(REASONING_PARSERS), help: "the think block goes to the message's 'reasoning' field" },
    { name: 'return-tokens-as-token-ids', kind: 'boolean', help: "logprobs name tokens as 'token_id:N' (a request's return_tokens_as_token_ids overrides)" },
    { name: 'shutdown-grace-period', kind: 'number', min: 0, metavar: 'SECONDS', help: 'on SIGTERM, let running requests finish this long, then end the rest (streams get an error event and [DONE])', defaultText: '10' },
    { name: 'request-timeout', kind: 'number', min: 0.001, metavar: 'SECONDS', help: 'a generation request running longer than this (queueing included) is aborted alone and answers 408 (streams: an error event, then [DONE])', defaultText: 'no limit' },
    { name: 'disable-log-requests', kind: 'boolean', aliases: ['disable-uvicorn-access-log'], help: 'no stderr line per request (shown at --log-level info, the default)' },
    ...ENGINE_FLAGS,
  ],
  examples: [
    'webgpu-llm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000 --gpu-memory-utilization 0.8',
    'curl http://127.0.0.1:8000/v1/completions -H "Content-Type: application/json" -d \'{"prompt": "Once upon a time", "max_tokens": 32}\'',
  ],
};

/** ServeOptions from the flags, for the loaded LLM and the chat template read from --chat-template. */
export function serveOptions(v: FlagValues, llm: LLM, model: string | undefined, chatTemplate: string | undefined, log: Logger): ServeOptions {
  return {
    llm,
    host: (v.host as string | undefined) ?? '127.0.0.1',
    port: (v.port as number | undefined) ?? 8000,
    apiKey: (v['api-key'] as string | undefined) || process.env.VLLM_API_KEY || undefined, // empty is unset, as vLLM
    servedModelName: (v['served-model-name'] as string[] | undefined) ?? [model ?? 'tinystories-656K'],
    chatTemplate,
    maxPromptChars: v['max-prompt-chars'] as number | undefined,
    allowedOrigins: v['allowed-origins'] as string[] | undefined,
    trustRequestChatTemplate: v['trust-request-chat-template'] === true,
    requestTimeoutMs: v['request-timeout'] === undefined ? undefined : (v['request-timeout'] as number) * 1000,
    enableAutoToolChoice: v['enable-auto-tool-choice'] === true,
    toolCallParser: v['tool-call-parser'] as string | undefined,
    reasoningParser: v['reasoning-parser'] as string | undefined,
    returnTokensAsTokenIds: v['return-tokens-as-token-ids'] === true,
    // vLLM's switch is the environment variable (an integer: non-zero is on).
    responsesStore: v['enable-responses-store'] === true || Number(process.env.VLLM_ENABLE_RESPONSES_API_STORE ?? 0) !== 0,
    onInternalError: (err) => log('error', `webgpu-llm: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
  };
}

export async function serveCommand(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseCommand(SERVE, argv);
  if (positionals.length > 0 && v.model !== undefined) throw new UsageError('give the model either as MODEL or as --model, not both');
  if (v['enable-auto-tool-choice'] && !v['tool-call-parser']) throw new UsageError('--enable-auto-tool-choice needs --tool-call-parser NAME');
  const model = positionals[0] ?? (v.model as string | undefined);
  const log = makeLogger(v);
  const graceS = (v['shutdown-grace-period'] as number | undefined) ?? 10;
  const chatTemplate = v['chat-template'] === undefined ? undefined : await loadChatTemplate(v['chat-template'] as string);
  const llm = await loadModel(v, model, log, true);
  const options = serveOptions(v, llm, model, chatTemplate, log);
  const server = await serve(options);
  if (!v['disable-log-requests']) {
    // One line per request once its response ends (streams included), as uvicorn's access log.
    server.server.on('request', (req, res) => {
      const t0 = performance.now();
      res.once('close', () => log('info', `webgpu-llm: ${req.method} ${req.url} ${res.statusCode} ${(performance.now() - t0).toFixed(0)} ms`));
    });
  }
  const names = [options.servedModelName].flat();
  process.stderr.write(`webgpu-llm: serving '${names[0]}' at ${server.url}/v1 (Ctrl-C stops)\n`);
  const signal = await new Promise<'SIGINT' | 'SIGTERM'>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  if (signal === 'SIGTERM') {
    process.stderr.write(`webgpu-llm: SIGTERM: finishing running requests (up to ${graceS} s)\n`);
    await server.shutdown(graceS * 1000);
  } else {
    await server.close();
  }
  await llm.dispose();
}
