/**
 * Chat templates against Hugging Face: every shared model with a chat template renders the goldens' conversations
 * to the same text and ids as transformers' apply_chat_template (both addGenerationPrompt values), refuses what the
 * template refuses, and renders tools, tool calls, kwargs and continueFinalMessage as transformers 5.17 does (the
 * HF_* strings below were produced by it). Then LLM.chat end to end, and the errors.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChatTemplate as loadChatTemplateFile } from '../bindings/node/chat-template.js';
import { InvalidArgumentError, LLM, SamplingParams } from '../bindings/node/index.js';
import { applyChatTemplate, loadChatTemplate, type ChatMessage, type ChatTool } from '../src/chat/index.js';
import { detectContentFormat } from '../src/chat/content-format.js';
import { parseTemplate, strftime } from '../src/chat/jinja-env.js';
import { loadLLM } from './helpers/llm.js';
import { loadGoldens, modelDir } from './helpers/paths.js';
import { loadTokenizer, TOKENIZER_MODELS } from './helpers/tokenizer-source.js';

interface ChatGolden {
  messages: ChatMessage[];
  add_generation_prompt: boolean;
  text?: string;
  ids?: number[];
  error?: string;
}
interface ToolsGolden {
  messages: ChatMessage[];
  tools: ChatTool[];
  kwargs: { add_generation_prompt: boolean };
  text: string;
  ids: number[];
}

const goldens = loadGoldens();
const TEMPLATE_MODELS = Object.keys(goldens).filter((m) => goldens[m].chat);
const WEATHER = (goldens['llama3-rand'].chat_tools as ToolsGolden).tools;

/** A tool-use exchange in OpenAI's wire form: arguments as a JSON string, assistant content null. */
const TOOL_EXCHANGE: ChatMessage[] = [
  { role: 'user', content: 'What is the weather in Paris?' },
  { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } }] },
  { role: 'tool', tool_call_id: 'c1', content: '22 C, sunny' },
];

describe('chat templates against transformers', () => {
  it('covers every shared model that has a chat template', async () => {
    expect(TEMPLATE_MODELS.sort()).toEqual(['llama3-rand', 'mistral-rand', 'qwen2-rand', 'qwen3-rand', 'tiny-random-llama2']);
    for (const m of TOKENIZER_MODELS) {
      const tok = await loadTokenizer(m);
      expect(tok.chatTemplate !== null, m).toBe(TEMPLATE_MODELS.includes(m));
    }
  });

  for (const model of TEMPLATE_MODELS) {
    it(`${model}: text and ids equal the goldens, and refused conversations raise the template's message`, async () => {
      const tok = await loadTokenizer(model);
      const entries = goldens[model].chat as ChatGolden[];
      expect(new Set(entries.map((e) => e.add_generation_prompt))).toEqual(new Set([true, false]));
      for (const e of entries) {
        const run = () => applyChatTemplate(tok, e.messages, { addGenerationPrompt: e.add_generation_prompt });
        if (e.error) {
          const message = /TemplateError\('(.*)'\)/.exec(e.error)![1];
          expect(run).toThrow(InvalidArgumentError);
          expect(run).toThrow(message);
          continue;
        }
        const out = run();
        expect(out.prompt).toBe(e.text);
        expect(out.promptTokenIds).toEqual(e.ids);
      }
    });
  }

  it('llama3-rand: renders chat_tools (tools as JSON in the first user turn)', async () => {
    const g = goldens['llama3-rand'].chat_tools as ToolsGolden;
    const out = applyChatTemplate(await loadTokenizer('llama3-rand'), g.messages, { tools: g.tools, addGenerationPrompt: g.kwargs.add_generation_prompt });
    expect(out.prompt).toBe(g.text);
    expect(out.promptTokenIds).toEqual(g.ids);
  });

  it('llama3-rand: renders a tool call and its result', async () => {
    const out = applyChatTemplate(await loadTokenizer('llama3-rand'), TOOL_EXCHANGE, { tools: WEATHER });
    expect(out.prompt).toBe(HF_LLAMA3_TOOL_CALLS);
  });

  it('qwen3-rand: renders tools in the system turn, tool calls and tool responses', async () => {
    const tok = await loadTokenizer('qwen3-rand');
    expect(applyChatTemplate(tok, [TOOL_EXCHANGE[0]], { tools: WEATHER }).prompt).toBe(HF_QWEN3_TOOLS);
    const out = applyChatTemplate(tok, TOOL_EXCHANGE, { tools: WEATHER });
    expect(out.prompt).toBe(HF_QWEN3_TOOLS + HF_QWEN3_TOOL_CALLS_TAIL);
    expect(out.promptTokenIds).toEqual(tok.encode(out.prompt, { addSpecialTokens: false }));
  });

  it("qwen3-rand: passes chatTemplateKwargs (enable_thinking: false adds an empty think block)", async () => {
    const tok = await loadTokenizer('qwen3-rand');
    const hi: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    expect(applyChatTemplate(tok, hi, { chatTemplateKwargs: { enable_thinking: false } }).prompt).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
    expect(applyChatTemplate(tok, hi).prompt).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('continueFinalMessage ends inside the final message, keeping its spaces only where the template does', async () => {
    const story = (text: string): ChatMessage[] => [
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: text },
    ];
    const opts = { addGenerationPrompt: false, continueFinalMessage: true };
    expect(applyChatTemplate(await loadTokenizer('qwen3-rand'), story('Once upon a time '), opts).prompt).toBe(
      '<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nOnce upon a time ',
    );
    // Llama 3.1 trims message content: the trailing space is gone.
    expect(applyChatTemplate(await loadTokenizer('llama3-rand'), story('Once upon a time '), opts).prompt).toBe(
      HF_LLAMA3_PREFIX + '<|start_header_id|>user<|end_header_id|>\n\nTell me a story.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nOnce upon a time',
    );
    expect(applyChatTemplate(await loadTokenizer('mistral-rand'), story('Once upon a time'), opts).prompt).toBe(
      '<s>[INST] Tell me a story. [/INST]Once upon a time',
    );
  });

  it("accepts OpenAI content parts: text parts joined by '\\n' for string templates, kept as parts for templates that loop over them", async () => {
    const tok = await loadTokenizer('qwen3-rand');
    const parts: ChatMessage[] = [{ role: 'user', content: [{ type: 'text', text: 'Hello' }, { type: 'text', text: 'world' }] }];
    expect(applyChatTemplate(tok, parts).prompt).toBe('<|im_start|>user\nHello\nworld<|im_end|>\n<|im_start|>assistant\n');
    const loops = "{% for m in messages %}{% for p in m['content'] %}[{{ p.type }}:{{ p.text }}]{% endfor %}{% endfor %}";
    expect(detectContentFormat(parseTemplate(loops))).toBe('openai');
    expect(detectContentFormat(parseTemplate(tok.chatTemplate as string))).toBe('string');
    expect(applyChatTemplate(tok, parts, { chatTemplate: loops }).prompt).toBe('[text:Hello][text:world]');
    expect(applyChatTemplate(tok, [{ role: 'user', content: 'Hi' }], { chatTemplate: loops }).prompt).toBe('[text:Hi]');
    const viaSet = "{% for m in messages %}{% set c = m.content %}{% for p in c %}{{ p.text }}{% endfor %}{% endfor %}";
    expect(detectContentFormat(parseTemplate(viaSet))).toBe('openai');
  });

  it('picks named templates as transformers: default, tool_use when tools are given, or the one named', async () => {
    const base = await loadTokenizer('qwen3-rand');
    const tok = Object.create(base, {
      chatTemplate: {
        value: [
          { name: 'default', template: 'D{{ messages[0].content }}' },
          { name: 'tool_use', template: 'T{{ tools | length }}' },
          { name: 'rag', template: 'R{{ documents[0].text }}' },
        ],
      },
    });
    const hi: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    expect(applyChatTemplate(tok, hi).prompt).toBe('DHi');
    expect(applyChatTemplate(tok, hi, { tools: WEATHER }).prompt).toBe('T1');
    expect(applyChatTemplate(tok, hi, { chatTemplate: 'rag', documents: [{ title: 't', text: 'doc' }] }).prompt).toBe('Rdoc');
    expect(applyChatTemplate(tok, hi, { chatTemplate: '{{ bos_token }}|{{ eos_token }}|{{ pad_token }}' }).prompt).toBe('|<|im_end|>|<|endoftext|>');
    const noDefault = Object.create(base, { chatTemplate: { value: [{ name: 'rag', template: 'R' }] } });
    expect(() => applyChatTemplate(noDefault, hi)).toThrow(/none named 'default'.*'rag'/);
  });

  it('gives templates strftime_now and range as transformers does', async () => {
    const tok = await loadTokenizer('qwen3-rand');
    const render = (chatTemplate: string) => applyChatTemplate(tok, [{ role: 'user', content: 'Hi' }], { chatTemplate }).prompt;
    expect(render('{% for i in range(3) %}{{ i }}{% endfor %}|{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}')).toBe('012|135');
    expect(render('{{ strftime_now("%Y") }}')).toBe(String(new Date().getFullYear()));
    expect(strftime(new Date(2024, 6, 26, 15, 4, 5), '%d %b %Y %H:%M:%S %A %B %j %I%p %%')).toBe('26 Jul 2024 15:04:05 Friday July 208 03PM %');
  });
});

describe('chat errors', () => {
  it('a model without a chat template, and no chatTemplate given', async () => {
    const tok = await loadTokenizer('stories260K');
    const run = () => applyChatTemplate(tok, [{ role: 'user', content: 'Hi' }]);
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(/no chat template.*pass chatTemplate/);
    expect(applyChatTemplate(tok, [{ role: 'user', content: 'Hi' }], { chatTemplate: '{{ bos_token }}{{ messages[0].content }}' }).promptTokenIds).toEqual(
      tok.encode('<s>Hi', { addSpecialTokens: false }),
    );
  });

  it('addGenerationPrompt and continueFinalMessage together', async () => {
    const tok = await loadTokenizer('qwen3-rand');
    const run = () => applyChatTemplate(tok, [{ role: 'assistant', content: 'Once' }], { continueFinalMessage: true });
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(/continueFinalMessage and addGenerationPrompt cannot both be true/);
  });

  it('names the bad message or option', async () => {
    const tok = await loadTokenizer('qwen3-rand');
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError);
        return [(e as InvalidArgumentError).field, (e as Error).message];
      }
      throw new Error('did not throw');
    };
    expect(field(() => applyChatTemplate(tok, []))).toEqual(['messages', 'messages is empty: a conversation needs at least one message']);
    expect(field(() => applyChatTemplate(tok, [{ role: 'user', content: 'a' }, { content: 'b' } as ChatMessage]))[1]).toBe('messages[1].role must be a non-empty string');
    expect(field(() => applyChatTemplate(tok, [{ role: 'user', content: [{ type: 'image_url', image_url: {} } as never] }]))[1]).toMatch(
      /messages\[0\]\.content\[0\] has type 'image_url': only text/,
    );
    const badArgs: ChatMessage[] = [{ role: 'assistant', tool_calls: [{ function: { name: 'f', arguments: '{oops' } }] }];
    expect(field(() => applyChatTemplate(tok, badArgs, { addGenerationPrompt: false }))[1]).toMatch(/tool_calls\[0\]\.function\.arguments is not valid JSON/);
    expect(field(() => applyChatTemplate(tok, [{ role: 'user', content: 'a' }], { chatTemplate: '{% if %}' }))[0]).toBe('chatTemplate');
    expect(field(() => applyChatTemplate(tok, [{ role: 'user', content: 'a' }], { chatTemplateKwargs: { messages: [] } }))[0]).toBe('chatTemplateKwargs');
    expect(field(() => applyChatTemplate(tok, [{ role: 'user', content: 'a' }], { chatTemplate: "{{ raise_exception('no users allowed') }}" }))).toEqual([
      'messages',
      'no users allowed',
    ]);
  });

  it('the caller’s messages are left untouched', async () => {
    const copy = JSON.parse(JSON.stringify(TOOL_EXCHANGE));
    applyChatTemplate(await loadTokenizer('qwen3-rand'), TOOL_EXCHANGE, { tools: WEATHER });
    expect(TOOL_EXCHANGE).toEqual(copy);
  });
});

describe('loadChatTemplate', () => {
  it('returns template text as is, reads paths through a reader (the Node entry: the file system), and says why a path fails', async () => {
    const text = '{% for m in messages %}{{ m.content }}{% endfor %}';
    expect(await loadChatTemplate(text)).toBe(text);
    const dir = mkdtempSync(join(tmpdir(), 'chat-template-'));
    writeFileSync(join(dir, 't.jinja'), text);
    expect(await loadChatTemplateFile(join(dir, 't.jinja'))).toBe(text);
    expect(await loadChatTemplate('t.jinja', async (p) => (p === 't.jinja' ? 'X' : ''))).toBe('X');
    await expect(loadChatTemplate('t.jinja')).rejects.toThrow(/looks like a file path, but no reader/);
    await expect(loadChatTemplateFile(join(dir, 'missing.jinja'))).rejects.toThrow(/missing\.jinja' looks like a file path, but it could not be read/);
  });
});

describe('LLM.chat', () => {
  let llm: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tiny-random-llama2'));
  });
  afterAll(() => llm.dispose());

  const CONVERSATIONS: ChatMessage[][] = [
    [{ role: 'user', content: 'Hello, how are you?' }],
    [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Say hi.' },
    ],
  ];

  it('generates greedily the same as generate on the rendered prompt ids, one conversation or a batch', async () => {
    const params = new SamplingParams({ temperature: 0, maxTokens: 8, ignoreEos: true });
    const batch = await llm.chat(CONVERSATIONS, params);
    expect(batch).toHaveLength(2);
    for (let i = 0; i < CONVERSATIONS.length; i++) {
      const golden = (goldens['tiny-random-llama2'].chat as ChatGolden[]).find(
        (e) => e.add_generation_prompt && JSON.stringify(e.messages) === JSON.stringify(CONVERSATIONS[i]),
      )!;
      const [single] = await llm.chat(CONVERSATIONS[i], params);
      const [direct] = await llm.generate({ promptTokenIds: golden.ids! }, params);
      for (const out of [batch[i], single]) {
        expect(out.promptTokenIds).toEqual(golden.ids);
        expect(out.prompt).toBe(golden.text);
        expect(out.outputs[0].tokenIds).toEqual(direct.outputs[0].tokenIds);
        expect(out.outputs[0].text).toBe(direct.outputs[0].text);
      }
    }
  });

  it('validates every conversation before generating any', async () => {
    const refused: ChatMessage[] = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    await expect(llm.chat([CONVERSATIONS[0], refused])).rejects.toThrow('Conversation roles must alternate user/assistant/user/assistant/...');
    expect(llm.engine.stats.numRunning + llm.engine.stats.numWaiting).toBe(0);
  });

  it('an empty batch gives no outputs', async () => {
    expect(await llm.chat([])).toEqual([]);
  });
});

describe('LLM.chat without a model template', () => {
  it('fails clearly, and works with chatTemplate', async () => {
    const llm = await loadLLM(modelDir('tinystories-656K'));
    try {
      await expect(llm.chat([{ role: 'user', content: 'Hi' }])).rejects.toThrow(/no chat template/);
      const chatTemplate = '{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}';
      const params = new SamplingParams({ temperature: 0, maxTokens: 6 });
      const [out] = await llm.chat([{ role: 'user', content: 'Once upon a time' }], params, { chatTemplate });
      expect(out.prompt).toBe('<|start_story|>Once upon a time');
      expect(out.promptTokenIds).toEqual(llm.engine.tokenizer.encode(out.prompt!, { addSpecialTokens: false }));
      const [ref] = await llm.generate({ promptTokenIds: out.promptTokenIds }, params);
      expect(out.outputs[0].tokenIds).toEqual(ref.outputs[0].tokenIds);
    } finally {
      await llm.dispose();
    }
  });
});

const HF_LLAMA3_PREFIX = '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>';

// transformers 5.17, apply_chat_template(TOOL_EXCHANGE with arguments as a dict, tools=WEATHER, add_generation_prompt=True).
const HF_LLAMA3_TOOL_CALLS =
  '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.\n\n{\n    "type": "function",\n    "function": {\n        "name": "get_weather",\n        "description": "Get the current weather in a city",\n        "parameters": {\n            "type": "object",\n            "properties": {\n                "city": {\n                    "type": "string",\n                    "description": "City name"\n                },\n                "unit": {\n                    "type": "string",\n                    "enum": [\n                        "celsius",\n                        "fahrenheit"\n                    ]\n                }\n            },\n            "required": [\n                "city"\n            ]\n        }\n    }\n}\n\nWhat is the weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n"22 C, sunny"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';

const HF_QWEN3_TOOLS =
  '<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n';

const HF_QWEN3_TOOL_CALLS_TAIL =
  '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n22 C, sunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n';
