/**
 * Tool-call parsers (tool_choice 'auto') and reasoning parsers, on the texts each model family writes, and the
 * message builder that streams them: the streamed deltas add up to the whole message.
 */
import { describe, expect, it } from 'vitest';
import { MessageBuilder, type MessageDelta } from '../src/server/chat-message.js';
import { REASONING_PARSERS, splitStreaming } from '../src/tool-calls/reasoning-parsers.js';
import { TOOL_PARSERS } from '../src/tool-calls/tool-parsers.js';

const call = (name: string, args: object) => ({ name, arguments: JSON.stringify(args) });

describe('tool-call parsers', () => {
  it('hermes: <tool_call> blocks, content before them', () => {
    const text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
    expect(TOOL_PARSERS.hermes.extract(text)).toEqual({ content: 'Let me check.\n', calls: [call('get_weather', { city: 'Paris' }), call('get_time', {})] });
    expect(TOOL_PARSERS.hermes.extract('no calls here')).toEqual({ content: 'no calls here', calls: [] });
    expect(TOOL_PARSERS.hermes.extract('<tool_call>{"name": broken</tool_call>').calls).toEqual([]);
    expect(TOOL_PARSERS.hermes.start('abc <tool_')).toBe(4);
    expect(TOOL_PARSERS.hermes.start('abc')).toBe(-1);
  });
  it('llama3_json: one or more JSON calls, parameters or arguments', () => {
    expect(TOOL_PARSERS.llama3_json.extract('{"name": "f", "parameters": {"a": "x;y"}}; {"name": "g", "arguments": {"b": 2}}')).toEqual({
      content: null,
      calls: [call('f', { a: 'x;y' }), call('g', { b: 2 })],
    });
    expect(TOOL_PARSERS.llama3_json.extract('<|python_tag|>{"name": "f", "parameters": {}}').calls).toEqual([call('f', {})]);
    expect(TOOL_PARSERS.llama3_json.extract('Hello {"name": "f"}').calls).toEqual([]);
  });
  it('mistral: [TOOL_CALLS] with a JSON list, or name{args}', () => {
    expect(TOOL_PARSERS.mistral.extract('[TOOL_CALLS][{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {}}]')).toEqual({ content: null, calls: [call('f', { a: 1 }), call('g', {})] });
    expect(TOOL_PARSERS.mistral.extract('Sure[TOOL_CALLS]f{"a": 1}')).toEqual({ content: 'Sure', calls: [call('f', { a: 1 })] });
    expect(TOOL_PARSERS.mistral.needsSpecialTokens).toBe(true);
  });
  it('pythonic: a list of Python calls', () => {
    expect(TOOL_PARSERS.pythonic.extract('[get_weather(city="Paris", days=3, metric=True, extra=None), get_time(zones=[\'utc\', "cet"], opts={"a": -1.5})]')).toEqual({
      content: null,
      calls: [call('get_weather', { city: 'Paris', days: 3, metric: true, extra: null }), call('get_time', { zones: ['utc', 'cet'], opts: { a: -1.5 } })],
    });
    expect(TOOL_PARSERS.pythonic.extract('[not a call').calls).toEqual([]);
    expect(TOOL_PARSERS.pythonic.extract('plain text').calls).toEqual([]);
  });
});

describe('reasoning parsers', () => {
  it('qwen3: the block in the output; none: all content', () => {
    expect(REASONING_PARSERS.qwen3.split('<think>\nhmm\n</think>\n\nYes.')).toEqual({ reasoning: '\nhmm\n', content: 'Yes.' });
    expect(REASONING_PARSERS.qwen3.split('Yes.')).toEqual({ reasoning: null, content: 'Yes.' });
    expect(REASONING_PARSERS.qwen3.split('<think>cut short')).toEqual({ reasoning: 'cut short', content: null });
  });
  it('deepseek_r1: the block opened in the prompt', () => {
    expect(REASONING_PARSERS.deepseek_r1.split('thinking</think>Answer')).toEqual({ reasoning: 'thinking', content: 'Answer' });
    expect(REASONING_PARSERS.deepseek_r1.split('still thinking')).toEqual({ reasoning: 'still thinking', content: null });
  });
  it('streaming holds back a marker still arriving', () => {
    expect(splitStreaming(REASONING_PARSERS.deepseek_r1, 'abc</th', false)).toEqual({ reasoning: 'abc', content: null });
    expect(splitStreaming(REASONING_PARSERS.deepseek_r1, 'abc</th', true)).toEqual({ reasoning: 'abc</th', content: null });
  });
});

describe('MessageBuilder', () => {
  /** Streams `text` in pieces of `k` characters and folds the deltas. */
  function stream(b: MessageBuilder, text: string, k: number) {
    const acc = { content: '', reasoning: '', calls: [] as unknown[], finish: null as string | null };
    for (let i = 0; i < text.length; i += k) {
      const last = i + k >= text.length;
      const { delta, finishReason } = b.delta(text.slice(i, i + k), last ? 'stop' : null);
      const d = (delta ?? {}) as MessageDelta;
      acc.content += d.content ?? '';
      acc.reasoning += d.reasoning ?? '';
      acc.calls.push(...(d.tool_calls ?? []));
      if (last) acc.finish = finishReason;
    }
    return acc;
  }
  const text = '<think>\nplan</think>\n\nOK <tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>';
  for (const k of [1, 3, 7, 1000]) {
    it(`streamed in pieces of ${k} = the whole message (hermes + qwen3)`, () => {
      const opts = { forced: null, toolParser: TOOL_PARSERS.hermes, reasoning: REASONING_PARSERS.qwen3 };
      const whole = new MessageBuilder(opts);
      whole.text = text;
      const { message, finishReason } = whole.message('stop');
      expect(message).toMatchObject({ content: 'OK ', reasoning: '\nplan', tool_calls: [{ type: 'function', function: call('f', { a: 1 }) }] });
      expect(finishReason).toBe('tool_calls');
      const s = stream(new MessageBuilder(opts), text, k);
      expect(s).toMatchObject({ content: 'OK ', reasoning: '\nplan', finish: 'tool_calls' });
      expect(s.calls).toEqual([{ index: 0, id: expect.stringMatching(/^chatcmpl-tool-/), type: 'function', function: call('f', { a: 1 }) }]);
    });
  }
  it('plain text passes through as content deltas', () => {
    const s = stream(new MessageBuilder({ forced: null, toolParser: null, reasoning: null }), 'hello <think> world', 2);
    expect(s).toEqual({ content: 'hello <think> world', reasoning: '', calls: [], finish: 'stop' });
  });
});
