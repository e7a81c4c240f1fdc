/**
 * Tool-call parsers for `tool_choice: 'auto'` (vLLM's --enable-auto-tool-choice --tool-call-parser NAME): each
 * reads the calls a model family writes in its text and returns them with the text around them.
 *   hermes       Qwen2.5 / Qwen3 / Hermes: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, repeated.
 *   llama3_json  Llama 3.1-3.3: `{"name": ..., "parameters": {...}}` (optionally after `<|python_tag|>`), several
 *                separated by `;`, the whole output being the call(s).
 *   mistral      `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]` (the marker is a special token: the parser
 *                asks for special tokens in the text).
 *   pythonic     Llama 3.2 / 4: `[get_weather(city="Paris", days=3), get_time(zone="utc")]`, Python literals.
 * Text that looks like a call but does not parse is returned as content, as vLLM does.
 *
 * @example
 *   TOOL_PARSERS.hermes.extract('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>');
 *   // { content: null, calls: [{ name: 'f', arguments: '{"a":1}' }] }
 */

/** One parsed call: the function's name and its arguments as JSON text. */
export interface ParsedToolCall {
  name: string;
  arguments: string;
}

export interface ExtractedToolCalls {
  /** The text that is not a call (null when nothing is left). */
  content: string | null;
  calls: ParsedToolCall[];
}

export interface ToolParser {
  /** Finds the calls in a whole output. */
  extract(text: string): ExtractedToolCalls;
  /**
   * Where calls may begin in a streamed text: content before it streams as it comes; from it on the parser holds the
   * text until the end (a prefix of the marker at the end of the text is held too).
   */
  start(text: string): number;
  /** Whether the text must keep special tokens (the marker is one). */
  needsSpecialTokens: boolean;
}

const none = (text: string): ExtractedToolCalls => ({ content: text, calls: [] });
const argsText = (v: unknown) => JSON.stringify(v ?? {});

/** Index of `marker` in text, or of a prefix of it that ends the text (a marker still arriving); -1 if neither. */
function markerStart(text: string, marker: string): number {
  const at = text.indexOf(marker);
  if (at >= 0) return at;
  for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) if (text.endsWith(marker.slice(0, k))) return text.length - k;
  return -1;
}

/** A `{name, arguments|parameters}` object as a call, or null. */
function callOf(o: unknown): ParsedToolCall | null {
  if (typeof o !== 'object' || o === null) return null;
  const c = o as { name?: unknown; arguments?: unknown; parameters?: unknown };
  if (typeof c.name !== 'string') return null;
  const args = c.arguments ?? c.parameters;
  return { name: c.name, arguments: typeof args === 'string' ? args : argsText(args) };
}

const hermes: ToolParser = {
  needsSpecialTokens: false,
  start: (text) => markerStart(text, '<tool_call>'),
  extract(text) {
    const re = /<tool_call>([\s\S]*?)(?:<\/tool_call>|$)/g;
    const calls: ParsedToolCall[] = [];
    for (const m of text.matchAll(re)) {
      let call: ParsedToolCall | null = null;
      try {
        call = callOf(JSON.parse(m[1].trim()));
      } catch {
        return none(text);
      }
      if (!call) return none(text);
      calls.push(call);
    }
    if (calls.length === 0) return none(text);
    const content = text.slice(0, text.indexOf('<tool_call>'));
    return { content: content.trim() === '' ? null : content, calls };
  },
};

const llama3Json: ToolParser = {
  needsSpecialTokens: false,
  start: (text) => {
    const t = text.trimStart();
    return t.startsWith('{') || t.startsWith('<|python_tag|>') || '<|python_tag|>'.startsWith(t) ? 0 : -1;
  },
  extract(text) {
    const body = text.trim().replace(/^<\|python_tag\|>/, '').trim();
    if (!body.startsWith('{')) return none(text);
    const calls: ParsedToolCall[] = [];
    // Calls separated by ';' (JSON strings may contain ';', so split only where a prefix parses).
    let rest = body;
    while (rest.length > 0) {
      let parsed: ParsedToolCall | null = null;
      for (let end = rest.indexOf('}') + 1; end > 0 && parsed === null; end = rest.indexOf('}', end) + 1) {
        try {
          parsed = callOf(JSON.parse(rest.slice(0, end)));
          if (parsed) rest = rest.slice(end).trim().replace(/^;/, '').trim();
        } catch {
          // not yet the object's end
        }
      }
      if (!parsed) return none(text);
      calls.push(parsed);
    }
    return { content: null, calls };
  },
};

const mistral: ToolParser = {
  needsSpecialTokens: true,
  start: (text) => markerStart(text, '[TOOL_CALLS]'),
  extract(text) {
    const at = text.indexOf('[TOOL_CALLS]');
    if (at < 0) return none(text);
    const body = text.slice(at + '[TOOL_CALLS]'.length).trim();
    let calls: ParsedToolCall[] | null = null;
    try {
      const v = JSON.parse(body);
      const list = (Array.isArray(v) ? v : [v]).map(callOf);
      if (list.every((c) => c !== null)) calls = list as ParsedToolCall[];
    } catch {
      // Newer Mistral tokenizers: `[TOOL_CALLS]name{args}` (one call per marker).
      const m = /^([A-Za-z0-9_.-]+)\s*(\{[\s\S]*\})$/.exec(body);
      if (m) {
        try {
          calls = [{ name: m[1], arguments: argsText(JSON.parse(m[2])) }];
        } catch {
          calls = null;
        }
      }
    }
    if (!calls) return none(text);
    const content = text.slice(0, at);
    return { content: content.trim() === '' ? null : content, calls };
  },
};

/** A tiny reader of Python literals and calls: `[f(a=1, b="x", c=[True, None]), g()]`. */
class PyReader {
  i = 0;
  constructor(private readonly s: string) {}
  private ws() {
    while (/\s/.test(this.s[this.i] ?? '')) this.i++;
  }
  private eat(c: string): boolean {
    this.ws();
    if (this.s.startsWith(c, this.i)) {
      this.i += c.length;
      return true;
    }
    return false;
  }
  private expect(c: string) {
    if (!this.eat(c)) throw new Error(`expected ${c} at ${this.i}`);
  }
  private name(): string {
    this.ws();
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(this.s.slice(this.i));
    if (!m) throw new Error(`expected a name at ${this.i}`);
    this.i += m[0].length;
    return m[0];
  }
  calls(): ParsedToolCall[] {
    this.expect('[');
    const out: ParsedToolCall[] = [];
    while (!this.eat(']')) {
      if (out.length > 0) this.expect(',');
      const name = this.name();
      this.expect('(');
      const args: Record<string, unknown> = {};
      while (!this.eat(')')) {
        if (Object.keys(args).length > 0) this.expect(',');
        const key = this.name();
        this.expect('=');
        args[key] = this.value();
      }
      out.push({ name, arguments: JSON.stringify(args) });
    }
    this.ws();
    if (this.i !== this.s.length) throw new Error('text after the calls');
    return out;
  }
  private value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === '"' || c === "'") {
      let out = '';
      this.i++;
      while (this.s[this.i] !== c) {
        if (this.i >= this.s.length) throw new Error('unterminated string');
        if (this.s[this.i] === '\\') {
          const e = this.s[++this.i];
          out += ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[e] ?? e;
        } else out += this.s[this.i];
        this.i++;
      }
      this.i++;
      return out;
    }
    if (this.eat('[')) {
      const list: unknown[] = [];
      while (!this.eat(']')) {
        if (list.length > 0) this.expect(',');
        list.push(this.value());
      }
      return list;
    }
    if (this.eat('{')) {
      const obj: Record<string, unknown> = {};
      while (!this.eat('}')) {
        if (Object.keys(obj).length > 0) this.expect(',');
        const k = this.value();
        this.expect(':');
        obj[String(k)] = this.value();
      }
      return obj;
    }
    const m = /^(True|False|None|-?\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(this.s.slice(this.i));
    if (!m) throw new Error(`unexpected ${c} at ${this.i}`);
    this.i += m[0].length;
    return m[0] === 'True' ? true : m[0] === 'False' ? false : m[0] === 'None' ? null : Number(m[0]);
  }
}

const pythonic: ToolParser = {
  needsSpecialTokens: false,
  start: (text) => (text.trimStart().startsWith('[') || text.trim() === '' ? 0 : -1),
  extract(text) {
    const body = text.trim().replace(/^<\|python_start\|>/, '').replace(/<\|python_end\|>$/, '').trim();
    if (!body.startsWith('[')) return none(text);
    try {
      const calls = new PyReader(body).calls();
      return calls.length > 0 ? { content: null, calls } : none(text);
    } catch {
      return none(text);
    }
  },
};

/** The parsers by vLLM's --tool-call-parser names. */
export const TOOL_PARSERS: Record<string, ToolParser> = { hermes, llama3_json: llama3Json, mistral, pythonic };
