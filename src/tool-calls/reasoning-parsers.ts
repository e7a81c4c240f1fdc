/**
 * Reasoning parsers (vLLM's --reasoning-parser NAME): split a thinking model's `<think>...</think>` block off the
 * answer, into the message's `reasoning` field (vLLM's name; `reasoning_content` too, its older one).
 *   qwen3        the block is in the output (`<think>` included); output without `</think>` is all answer, unless it
 *                opened a block (then it is reasoning cut short).
 *   deepseek_r1  the chat template opens the block in the prompt: output up to `</think>` is reasoning, all of it
 *                when `</think>` never comes.
 *
 * @example
 *   REASONING_PARSERS.qwen3.split('<think>\nhmm\n</think>\n\nYes.'); // { reasoning: '\nhmm\n', content: 'Yes.' }
 */

export interface ReasoningSplit {
  reasoning: string | null;
  content: string | null;
}

export interface ReasoningParser {
  split(text: string): ReasoningSplit;
  /** The section's delimiters (vLLM's reasoning_start_str / reasoning_end_str): thinkingTokenBudget counts between them. */
  reasoningStartStr?: string;
  reasoningEndStr?: string;
}

const START = '<think>';
const END = '</think>';

function splitAt(text: string, noEnd: (body: string, opened: boolean) => ReasoningSplit): ReasoningSplit {
  const opened = text.trimStart().startsWith(START);
  const body = opened ? text.trimStart().slice(START.length) : text;
  const end = body.indexOf(END);
  if (end < 0) return noEnd(body, opened);
  const content = body.slice(end + END.length).replace(/^\n+/, '');
  return { reasoning: body.slice(0, end), content: content === '' ? null : content };
}

/** The parsers by vLLM's --reasoning-parser names. */
export const REASONING_PARSERS: Record<string, ReasoningParser> = {
  qwen3: {
    split: (text) => splitAt(text, (body, opened) => (opened ? { reasoning: body, content: null } : { reasoning: null, content: text })),
    reasoningStartStr: START,
    reasoningEndStr: END,
  },
  deepseek_r1: { split: (text) => splitAt(text, (body) => ({ reasoning: body, content: null })), reasoningStartStr: START, reasoningEndStr: END },
};

/**
 * The streamed form: the split of the text so far, holding back a tail that may be the start of `</think>` or
 * `<think>` still arriving (it is released with the next delta or at the end).
 */
export function splitStreaming(parser: ReasoningParser, text: string, final: boolean): ReasoningSplit {
  if (!final) {
    for (const marker of [END, START]) {
      for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) {
        if (text.endsWith(marker.slice(0, k))) {
          text = text.slice(0, text.length - k);
          break;
        }
      }
    }
  }
  return parser.split(text);
}
