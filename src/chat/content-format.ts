/**
 * Which content form a template expects, as vLLM's `_detect_content_format` (vllm/entrypoints/chat_utils.py): a
 * template that loops over a message's content (`{% for part in message['content'] %}`, directly or through a
 * variable set from it) wants OpenAI's list of parts; any other wants one string.
 *
 * @example
 * detectContentFormat(parseTemplate("{% for m in messages %}{{ m['content'] }}{% endfor %}")); // 'string'
 * detectContentFormat(parseTemplate("{% for m in messages %}{% for c in m.content %}{{ c.text }}{% endfor %}{% endfor %}")); // 'openai'
 */
import type { ChatContentFormat } from './messages.js';
import type { parseTemplate } from './jinja-env.js';

type Node = { type: string; [k: string]: unknown };

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && typeof (v as Node).type === 'string';

// Per parsed template (parseTemplate returns the same tree for the same text), so chat() walks each tree once.
const detected = new WeakMap<object, ChatContentFormat>();

export function detectContentFormat(program: ReturnType<typeof parseTemplate>): ChatContentFormat {
  let format = detected.get(program);
  if (format === undefined) detected.set(program, (format = detect(program)));
  return format;
}

function detect(program: ReturnType<typeof parseTemplate>): ChatContentFormat {
  const nodes = [...walk(program as unknown as Node)];
  // Variables assigned from some `x.content` / `x['content']`, e.g. `{% set content = message['content'] %}`.
  const contentVars = new Set<string>();
  for (const n of nodes) {
    if (n.type === 'Set' && isNode(n.assignee) && n.assignee.type === 'Identifier' && isContentAccess(n.value)) {
      contentVars.add(n.assignee.value as string);
    }
  }
  for (const n of nodes) {
    if (n.type !== 'For') continue;
    const it = unwrap(n.iterable);
    if (isContentAccess(it) || (isNode(it) && it.type === 'Identifier' && contentVars.has(it.value as string))) return 'openai';
  }
  return 'string';
}

// `x.content` or `x['content']`.
function isContentAccess(v: unknown): boolean {
  const e = unwrap(v);
  if (!isNode(e) || e.type !== 'MemberExpression' || !isNode(e.property)) return false;
  const p = e.property;
  return (p.type === 'Identifier' && !e.computed && p.value === 'content') || (p.type === 'StringLiteral' && p.value === 'content');
}

// Looks through filters and inline selects: `message.content | list`, `message.content if x`.
function unwrap(v: unknown): unknown {
  let e = v;
  while (isNode(e)) {
    if (e.type === 'FilterExpression') e = e.operand;
    else if (e.type === 'SelectExpression') e = e.lhs;
    else break;
  }
  return e;
}

function* walk(n: unknown): Generator<Node> {
  if (Array.isArray(n)) {
    for (const x of n) yield* walk(x);
    return;
  }
  if (n instanceof Map) {
    for (const [k, v] of n) {
      yield* walk(k);
      yield* walk(v);
    }
    return;
  }
  if (!isNode(n)) return;
  yield n;
  for (const v of Object.values(n)) if (typeof v === 'object' && v !== null) yield* walk(v);
}
