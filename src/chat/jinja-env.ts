/**
 * Parsing and rendering chat templates with @huggingface/jinja, with the globals transformers gives a template
 * (`render_jinja_template` in transformers/utils/chat_template_utils.py): `raise_exception`, `strftime_now`, plus
 * Jinja's `range`, `true`/`false`/`none` and their Python spellings. The library's own `Template.render` declares
 * these itself and allows no override, so templates run here through `Interpreter` with our environment: that is
 * how a `raise_exception` call is told apart from any other runtime error.
 *
 * Whitespace follows transformers: `trim_blocks` and `lstrip_blocks` on, one trailing newline dropped.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { InvalidArgumentError } from '../errors.js';

/** Thrown by a template's `raise_exception(message)`: the template refuses its input. */
export class TemplateRaisedError extends Error {
  override name = 'TemplateRaisedError';
}

type Program = Template['parsed'];

// Parsed templates by source text. A model has one or a few templates, and parsing a 4 kB template costs more than
// rendering it, so chat() on every request would otherwise reparse; the bound keeps user-supplied templates from
// growing it without limit.
const parsed = new Map<string, Program>();
const MAX_PARSED = 32;

/** The template's syntax tree (parsed once per distinct text). A syntax error names the chat template. */
export function parseTemplate(source: string): Program {
  let program = parsed.get(source);
  if (program) return program;
  try {
    program = new Template(source).parsed;
  } catch (e) {
    throw new InvalidArgumentError('chatTemplate', `the chat template does not parse: ${(e as Error).message}`);
  }
  if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value!);
  parsed.set(source, program);
  return program;
}

/**
 * How much work one render may do: steps (an expression or statement evaluated, or a loop iteration) and wall
 * time. A template is code (a request's, with trustRequestChatTemplate, or a model's from the Hub): a nested loop
 * must fail as a bad input, not hold the event loop for every other request.
 */
export interface RenderBudget {
  /** Evaluation steps (default 1,000,000: a long conversation through a large template takes tens of thousands). */
  maxSteps?: number;
  /** Milliseconds, checked every 4096 steps (default 1000). */
  timeoutMs?: number;
}

export const DEFAULT_RENDER_BUDGET: Required<RenderBudget> = { maxSteps: 1_000_000, timeoutMs: 1000 };

/** Thrown when a render runs past its RenderBudget. */
export class TemplateBudgetError extends Error {
  override name = 'TemplateBudgetError';
}

type Env = ConstructorParameters<typeof Interpreter>[0];

/** An Interpreter that counts its steps against a budget. */
class BoundedInterpreter extends Interpreter {
  private steps = 0;
  private readonly deadline: number;

  constructor(env: Env, private readonly budget: Required<RenderBudget>) {
    super(env);
    this.deadline = Date.now() + budget.timeoutMs;
    // A loop iteration whose body is empty evaluates nothing but calls evaluateBlock, which the library declares
    // private: counted through the instance, so `for i in range(n)` costs n steps whatever its body.
    const self = this as unknown as { evaluateBlock: (statements: unknown, env: Env) => unknown };
    const block = self.evaluateBlock.bind(this);
    self.evaluateBlock = (statements, env) => {
      this.tick();
      return block(statements, env);
    };
  }

  override evaluate(...args: Parameters<Interpreter['evaluate']>): ReturnType<Interpreter['evaluate']> {
    this.tick();
    return super.evaluate(...args);
  }

  private tick(): void {
    const n = ++this.steps;
    if (n > this.budget.maxSteps) throw new TemplateBudgetError(`the chat template ran past its budget of ${this.budget.maxSteps} steps`);
    if ((n & 4095) === 0 && Date.now() > this.deadline) throw new TemplateBudgetError(`the chat template ran past its budget of ${this.budget.timeoutMs} ms`);
  }
}

/**
 * Renders a parsed template with `vars` as its top-level variables, within `budget`. Throws TemplateRaisedError for
 * raise_exception, TemplateBudgetError past the budget.
 */
export function renderTemplate(program: Program, vars: Record<string, unknown>, budget: RenderBudget = {}): string {
  const env = new Environment();
  for (const [k, v] of Object.entries(GLOBALS)) env.set(k, v);
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) continue; // left undefined, so that `is defined` is false, as for a kwarg not passed
    env.variables.delete(k); // a render variable overrides a global of the same name, as in Jinja
    env.set(k, v);
  }
  const limits = { maxSteps: budget.maxSteps ?? DEFAULT_RENDER_BUDGET.maxSteps, timeoutMs: budget.timeoutMs ?? DEFAULT_RENDER_BUDGET.timeoutMs };
  return new BoundedInterpreter(env, limits).run(program).value as string;
}

const MAX_RANGE = 1_000_000;

const GLOBALS: Record<string, unknown> = {
  true: true,
  false: false,
  none: null,
  True: true,
  False: false,
  None: null,
  raise_exception: (message: unknown) => {
    throw new TemplateRaisedError(String(message));
  },
  range: (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error('range() arg 3 must not be zero');
    // One step builds the whole list, so its length is bounded here rather than by the step budget.
    if (Math.abs((stop - start) / step) > MAX_RANGE) throw new Error(`range() of more than ${MAX_RANGE} items`);
    const out: number[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
    return out;
  },
  strftime_now: (format: string) => strftime(new Date(), format),
};

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * Python's `datetime.now().strftime(format)` in the C locale (what transformers' `strftime_now` returns), for the
 * directives templates use, e.g. Llama 3.2's `strftime_now("%d %b %Y")` -> '26 Jul 2024'. Others pass through.
 */
export function strftime(d: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const hour12 = d.getHours() % 12 || 12;
  const dayOfYear = Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1)) / 86_400_000) + 1;
  return format.replace(/%[a-zA-Z%]/g, (code) => {
    switch (code) {
      case '%Y': return String(d.getFullYear());
      case '%y': return pad(d.getFullYear() % 100);
      case '%m': return pad(d.getMonth() + 1);
      case '%d': return pad(d.getDate());
      case '%H': return pad(d.getHours());
      case '%I': return pad(hour12);
      case '%M': return pad(d.getMinutes());
      case '%S': return pad(d.getSeconds());
      case '%p': return d.getHours() < 12 ? 'AM' : 'PM';
      case '%b': return MONTHS[d.getMonth()].slice(0, 3);
      case '%B': return MONTHS[d.getMonth()];
      case '%a': return DAYS[d.getDay()].slice(0, 3);
      case '%A': return DAYS[d.getDay()];
      case '%j': return pad(dayOfYear, 3);
      case '%%': return '%';
      default: return code;
    }
  });
}
