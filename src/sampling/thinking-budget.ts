/**
 * vLLM's `thinking_token_budget` (vllm/v1/sample/thinking_budget_state.py): a sequence may spend at most `budget`
 * tokens inside its reasoning section, the tokens after the reasoning start sequence (`<think>`) and before the end
 * sequence (`</think>`); once it has, the end sequence is forced, one token a step, and the answer follows.
 *
 * Thinking tokens are counted from the start sequence wherever it is: a prompt that ends inside a think block (a
 * template that opens it, as DeepSeek-R1's `<think>\n`) has spent the tokens after it already, so with budget 0 the
 * first output token is the end. Only the first think section is budgeted (vLLM finds the start and end once). A
 * forced token wins over every other logit (vLLM raises its logit to 1e9 after the penalties), so masks, bias and
 * sampling cannot refuse it; logprobs are still those of the raw row.
 *
 * @example
 *   const t = new ThinkingBudget({ startTokenIds: [151667], endTokenIds: [151668] }, 2, promptIds);
 *   t.forcedTokenId(); // null while under budget, then 151668
 *   t.accept([tokenId]); // after each step
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * vLLM's ReasoningConfig (`--reasoning-config`): the strings that open and close the reasoning section, e.g.
 * `{ reasoningStartStr: '<think>', reasoningEndStr: '</think>' }` (what the qwen3 and deepseek_r1 parsers use).
 */
export interface ReasoningConfig {
  reasoningStartStr: string;
  reasoningEndStr: string;
}

/** The config as token ids: each string tokenized without special tokens added (both must give tokens). */
export function reasoningTokenIds(config: ReasoningConfig, encode: (text: string) => number[]): ReasoningTokenIds {
  const ids = (field: keyof ReasoningConfig) => {
    const text = config[field];
    const out = typeof text === 'string' ? encode(text) : [];
    if (out.length === 0) throw new InvalidArgumentError('reasoningConfig', `reasoningConfig.${field} must be a string of at least one token, got ${JSON.stringify(text)}`);
    return out;
  };
  return { startTokenIds: ids('reasoningStartStr'), endTokenIds: ids('reasoningEndStr') };
}

/** The reasoning section's delimiters as token ids (vLLM's ReasoningConfig reasoning_start/end_token_ids). */
export interface ReasoningTokenIds {
  startTokenIds: readonly number[];
  endTokenIds: readonly number[];
}

/** Index of the last occurrence of `needle` in `hay` at or after `from`, or -1. */
function lastIndexOfSeq(hay: readonly number[], needle: readonly number[], from = 0): number {
  if (needle.length === 0) return -1;
  outer: for (let i = hay.length - needle.length; i >= Math.max(0, from); i--) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** One sequence's budget state, fed its output tokens as they come. */
export class ThinkingBudget {
  /** Tokens spent inside the think section so far (prompt and output). */
  thinkCount = 0;
  /** 'idle': no section yet; 'thinking': inside one; 'forcing': writing the end sequence; 'done': budget over. */
  phase: 'idle' | 'thinking' | 'forcing' | 'done' = 'idle';
  /** Tokens of the end sequence forced so far. */
  private endCount = 0;
  /** Output ids seen (start/end sequences may span steps). */
  private readonly output: number[] = [];

  constructor(
    private readonly ids: ReasoningTokenIds,
    /** Most thinking tokens (>= 0). */
    readonly budget: number,
    promptTokenIds: readonly number[],
  ) {
    const start = lastIndexOfSeq(promptTokenIds, ids.startTokenIds);
    const end = lastIndexOfSeq(promptTokenIds, ids.endTokenIds);
    if (start > end) {
      this.phase = 'thinking';
      this.thinkCount = promptTokenIds.length - (start + ids.startTokenIds.length);
      this.checkBudget();
    }
  }

  /** The token this step must produce, or null (sample freely). */
  forcedTokenId(): number | null {
    return this.phase === 'forcing' ? this.ids.endTokenIds[this.endCount] : null;
  }

  /** True once the budget no longer acts (no section can start a budgeted block again). */
  get finished(): boolean {
    return this.phase === 'done';
  }

  /** Takes a step's new output tokens. */
  accept(tokens: readonly number[]): void {
    for (const t of tokens) this.acceptOne(t);
  }

  private acceptOne(token: number): void {
    this.output.push(token);
    const { startTokenIds: S, endTokenIds: E } = this.ids;
    const endsWith = (seq: readonly number[]) => lastIndexOfSeq(this.output, seq, this.output.length - seq.length) >= 0;
    switch (this.phase) {
      case 'idle':
        if (endsWith(S)) {
          this.phase = 'thinking';
          this.thinkCount = 0;
          this.checkBudget();
        }
        return;
      case 'thinking':
        if (endsWith(E)) {
          // The model closed the section itself (the end's tokens before its last were counted as thinking).
          this.phase = 'done';
          return;
        }
        this.thinkCount++;
        this.checkBudget();
        return;
      case 'forcing':
        if (++this.endCount >= E.length) this.phase = 'done';
        return;
      case 'done':
        return;
    }
  }

  /** Thinking with the budget spent: force the end sequence next. */
  private checkBudget(): void {
    if (this.phase === 'thinking' && this.thinkCount >= this.budget) {
      this.phase = 'forcing';
      this.endCount = 0;
    }
  }
}
