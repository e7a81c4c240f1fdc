/** `webgpu-llm generate PROMPT`: streams one completion to stdout; a summary line goes to stderr. */
import { loadChatTemplate } from '../chat-template.js';
import { applyChatTemplate, type PromptInput } from '../index.js';
import { parseCommand, type CommandSpec } from './args.js';
import { ENGINE_FLAGS, MODEL_FLAG, SAMPLING_FLAGS, samplingInit } from './flags.js';
import { checkTemplate } from './chat.js';
import { loadModel, makeLogger } from './load.js';

export const GENERATE: CommandSpec = {
  name: 'generate',
  usage: 'PROMPT [--model MODEL] [--max-tokens N] [--temperature T] [--seed S] [flags]',
  summary:
    'Continues PROMPT with the model and streams the text to stdout as it is generated (the prompt first, then the completion); a line with the token count and speed goes to stderr. With --chat or --chat-template, PROMPT is a user message rendered through the chat template and only the reply is printed.',
  positionals: [{ name: 'PROMPT', help: 'the text to continue (quote it)' }],
  minPositionals: 1,
  maxPositionals: 1,
  flags: [
    MODEL_FLAG,
    ...SAMPLING_FLAGS,
    { name: 'chat', kind: 'boolean', help: "render PROMPT as a user message with the model's chat template" },
    { name: 'chat-template', kind: 'string', metavar: 'FILE|TEXT', help: 'a Jinja chat template (a file or the template text) to render PROMPT as a user message with (implies --chat)' },
    ...ENGINE_FLAGS,
  ],
  examples: [
    'webgpu-llm generate "Once upon a time" --max-tokens 64 --temperature 0',
    'webgpu-llm generate "Why is the sky blue?" --model Qwen/Qwen2.5-0.5B-Instruct --chat --quantization q8_0',
  ],
};

export async function generateCommand(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseCommand(GENERATE, argv);
  const log = makeLogger(v);
  const template = v['chat-template'] === undefined ? undefined : await loadChatTemplate(v['chat-template'] as string);
  const chat = v.chat === true || template !== undefined;
  const llm = await loadModel(v, v.model as string | undefined, log);
  try {
    const text = positionals[0];
    let prompt: PromptInput = text;
    if (chat) {
      checkTemplate(llm, template);
      const p = applyChatTemplate(llm.engine.tokenizer, [{ role: 'user', content: text }], { chatTemplate: template });
      prompt = { prompt: p.prompt, promptTokenIds: p.promptTokenIds };
    }
    const params = llm.getDefaultSamplingParams().clone({ ...samplingInit(v), outputKind: 'delta' });
    const stream = llm.engine.addRequest({ prompt, params });
    const t0 = performance.now();
    let tokens = 0;
    if (!chat) process.stdout.write(text);
    for await (const out of stream) {
      process.stdout.write(out.outputs[0].text);
      tokens += out.outputs[0].tokenIds.length;
    }
    process.stdout.write('\n');
    const s = (performance.now() - t0) / 1000;
    process.stderr.write(`[${tokens} tokens in ${s.toFixed(2)} s, ${(tokens / s).toFixed(1)} tokens/s]\n`);
  } finally {
    await llm.dispose();
  }
}
