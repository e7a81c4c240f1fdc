/**
 * `webgpu-llm chat`: a conversation in the terminal. Each line read from stdin is a user message; the whole
 * conversation is rendered with the model's chat template (or --chat-template) and the reply streams to stdout.
 * `/reset` starts over (keeping --system), `/exit` or end of input quits. Works with piped stdin too (one message
 * per line; no prompt is drawn then), so scripts and tests drive it like a user.
 */
import { createInterface } from 'node:readline';
import { loadChatTemplate } from '../chat-template.js';
import { applyChatTemplate, type ChatMessage, type LLM } from '../index.js';
import { parseCommand, type CommandSpec } from './args.js';
import { ENGINE_FLAGS, MODEL_FLAG, SAMPLING_FLAGS, samplingInit } from './flags.js';
import { loadModel, makeLogger } from './load.js';

export const CHAT: CommandSpec = {
  name: 'chat',
  usage: '[--model MODEL] [--system TEXT] [--chat-template FILE|TEXT] [flags]',
  summary:
    "An interactive chat in the terminal: type a message and press Enter; the reply streams as the model writes it. The conversation so far is rendered with the model's chat template each turn. Commands: /reset forgets the conversation, /exit (or Ctrl-D) quits. Piped stdin works too: one message per line.",
  flags: [
    MODEL_FLAG,
    { name: 'system', kind: 'string', metavar: 'TEXT', help: 'a system message that starts the conversation (kept by /reset)' },
    { name: 'chat-template', kind: 'string', metavar: 'FILE|TEXT', help: "a Jinja chat template (a file or the template text) instead of the tokenizer's; needed for models without one" },
    ...SAMPLING_FLAGS,
    ...ENGINE_FLAGS,
  ],
  examples: ['webgpu-llm chat --model Qwen/Qwen2.5-0.5B-Instruct --system "You are terse."', 'printf "Hi\\n/reset\\nHello\\n" | webgpu-llm chat --temperature 0'],
};

export async function chatCommand(argv: string[]): Promise<void> {
  const { values: v } = parseCommand(CHAT, argv);
  const log = makeLogger(v);
  const template = v['chat-template'] === undefined ? undefined : await loadChatTemplate(v['chat-template'] as string);
  const llm = await loadModel(v, v.model as string | undefined, log);
  try {
    checkTemplate(llm, template);
    await converse(llm, v.system as string | undefined, template, samplingInit(v));
  } finally {
    await llm.dispose();
  }
}

/** Fails before the first message when the template cannot render a conversation (a model without one). */
export function checkTemplate(llm: LLM, chatTemplate: string | undefined): void {
  try {
    applyChatTemplate(llm.engine.tokenizer, [{ role: 'user', content: 'hello' }], { chatTemplate });
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/: pass chatTemplate.*$/, '') : String(err);
    throw new Error(`${why}: give one with --chat-template FILE|TEXT`);
  }
}

async function converse(llm: LLM, system: string | undefined, chatTemplate: string | undefined, init: ReturnType<typeof samplingInit>): Promise<void> {
  const interactive = process.stdin.isTTY === true;
  const start = (): ChatMessage[] => (system === undefined ? [] : [{ role: 'system', content: system }]);
  let messages = start();
  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive });
  if (interactive) process.stdout.write(`webgpu-llm chat: /reset starts over, /exit quits\n`);
  const ask = () => interactive && rl.prompt();
  rl.setPrompt('> ');
  ask();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '') {
      ask();
      continue;
    }
    if (line === '/exit' || line === '/quit') break;
    if (line === '/reset') {
      messages = start();
      process.stdout.write('[conversation reset]\n');
      ask();
      continue;
    }
    if (line.startsWith('/')) {
      process.stdout.write(`[unknown command ${line}: /reset or /exit]\n`);
      ask();
      continue;
    }
    messages.push({ role: 'user', content: line });
    const p = applyChatTemplate(llm.engine.tokenizer, messages, { chatTemplate });
    const params = llm.getDefaultSamplingParams().clone({ ...init, outputKind: 'delta' });
    let reply = '';
    for await (const out of llm.engine.addRequest({ prompt: { prompt: p.prompt, promptTokenIds: p.promptTokenIds }, params })) {
      const delta = out.outputs[0].text;
      reply += delta;
      process.stdout.write(delta);
    }
    process.stdout.write('\n');
    messages.push({ role: 'assistant', content: reply });
    ask();
  }
  rl.close();
}
