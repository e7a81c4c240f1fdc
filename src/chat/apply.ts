/**
 * Conversation -> prompt text and token ids with the model's chat template, as vLLM's `apply_hf_chat_template`
 * over transformers' `apply_chat_template` (transformers 5.x, tokenization_utils_base.py and
 * utils/chat_template_utils.py):
 *   1. pick the template: the `chatTemplate` option, a name among the tokenizer's named templates, or the
 *      tokenizer's own ('default', or 'tool_use' when tools are given, when it has several);
 *   2. normalize the messages (messages.ts) in the content format the template expects (content-format.ts);
 *   3. render with messages, tools, documents, add_generation_prompt, the named special tokens (bos_token,
 *      eos_token, ...) and chatTemplateKwargs (e.g. Qwen3's enable_thinking) as variables;
 *   4. with continueFinalMessage, cut the text right after the final message's content, so the model continues it;
 *   5. tokenize without adding special tokens: the template already wrote BOS where the model wants it.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { detectContentFormat } from './content-format.js';
import { parseTemplate, type RenderBudget, renderTemplate, TemplateRaisedError } from './jinja-env.js';
import { normalizeMessages, type ChatContentFormat, type ChatMessage, type ConversationMessage } from './messages.js';

/** A tool the model may call, in OpenAI's `tools` form. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; [k: string]: unknown };
}

export interface ChatTemplateOptions {
  /** Jinja text, or the name of one of the tokenizer's named templates; default: the tokenizer's template. */
  chatTemplate?: string;
  /** 'auto' (default) detects from the template whether content is one string or a list of text parts. */
  chatTemplateContentFormat?: 'auto' | ChatContentFormat;
  /** End with the header of a new assistant turn (default true, as vLLM). */
  addGenerationPrompt?: boolean;
  /** End inside the final message, so the model continues it (default false; excludes addGenerationPrompt). */
  continueFinalMessage?: boolean;
  /** Tools in OpenAI's form, rendered by tool-aware templates. */
  tools?: ChatTool[] | null;
  /** Documents for retrieval-augmented templates (each typically `{title, text}`). */
  documents?: Record<string, unknown>[] | null;
  /** More template variables, e.g. `{ enable_thinking: false }`. */
  chatTemplateKwargs?: Record<string, unknown>;
  /** Let the tokenizer add its special tokens (BOS) on top of the template's (default false). */
  addSpecialTokens?: boolean;
  /** Bounds on the render's work (default 1,000,000 steps, 1000 ms); past them, an InvalidArgumentError. */
  renderBudget?: RenderBudget;
}

/** A rendered conversation. */
export interface ChatPrompt {
  prompt: string;
  promptTokenIds: number[];
}

// Variables the render call sets itself; in transformers, passing them as kwargs is an error too.
const RESERVED_KWARGS = ['messages', 'chat_template', 'tokenize', 'conversation'];
// Kwargs that stand for an option (vLLM merges chat_template_kwargs with these); the option wins when given.
const OPTION_KWARGS = { add_generation_prompt: 'addGenerationPrompt', continue_final_message: 'continueFinalMessage', tools: 'tools', documents: 'documents' } as const;

/**
 * Renders a conversation with the model's chat template and tokenizes it.
 *
 * @example
 * const { prompt, promptTokenIds } = applyChatTemplate(llm.engine.tokenizer, [{ role: 'user', content: 'Hi' }]);
 * // Qwen3: prompt === '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
 */
export function applyChatTemplate(tokenizer: Tokenizer, messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): ChatPrompt {
  const kwargs = { ...(opts.chatTemplateKwargs ?? {}) };
  for (const k of RESERVED_KWARGS) {
    if (k in kwargs) throw new InvalidArgumentError('chatTemplateKwargs', `chatTemplateKwargs may not set '${k}': pass it as an argument`);
  }
  const fromKwargs = <K extends keyof typeof OPTION_KWARGS>(k: K): unknown => {
    const v = opts[OPTION_KWARGS[k]] !== undefined ? opts[OPTION_KWARGS[k]] : kwargs[k];
    delete kwargs[k];
    return v;
  };
  const addGenerationPrompt = fromKwargs('add_generation_prompt') ?? true;
  const continueFinalMessage = fromKwargs('continue_final_message') ?? false;
  const tools = (fromKwargs('tools') ?? null) as ChatTool[] | null;
  const documents = fromKwargs('documents') ?? null;
  if (typeof addGenerationPrompt !== 'boolean') throw new InvalidArgumentError('addGenerationPrompt', 'addGenerationPrompt must be a boolean');
  if (typeof continueFinalMessage !== 'boolean') throw new InvalidArgumentError('continueFinalMessage', 'continueFinalMessage must be a boolean');
  if (addGenerationPrompt && continueFinalMessage) {
    throw new InvalidArgumentError(
      'continueFinalMessage',
      'continueFinalMessage and addGenerationPrompt cannot both be true: continueFinalMessage lets the model continue the ' +
        'final message, addGenerationPrompt starts a new assistant message. Set addGenerationPrompt: false.',
    );
  }
  if (tools !== null && !Array.isArray(tools)) throw new InvalidArgumentError('tools', 'tools must be a list of {type: "function", function: {...}}');
  if (documents !== null && !Array.isArray(documents)) throw new InvalidArgumentError('documents', 'documents must be a list of objects');

  const program = parseTemplate(resolveChatTemplate(tokenizer, opts.chatTemplate, tools));
  const requested = opts.chatTemplateContentFormat ?? 'auto';
  if (!['auto', 'string', 'openai'].includes(requested)) {
    throw new InvalidArgumentError('chatTemplateContentFormat', `chatTemplateContentFormat must be 'auto', 'string' or 'openai', got '${requested}'`);
  }
  const conversation = normalizeMessages(messages, requested === 'auto' ? detectContentFormat(program) : requested);

  let prompt: string;
  try {
    prompt = renderTemplate(program, {
      ...tokenizer.allSpecialTokens,
      ...kwargs,
      messages: conversation,
      tools,
      documents,
      add_generation_prompt: addGenerationPrompt,
    }, opts.renderBudget);
  } catch (e) {
    if (e instanceof TemplateRaisedError) throw new InvalidArgumentError('messages', e.message);
    throw new InvalidArgumentError('messages', `the chat template could not render these messages: ${(e as Error).message}`);
  }
  if (continueFinalMessage) prompt = cutAfterFinalMessage(prompt, conversation);
  const promptTokenIds = tokenizer.encode(prompt, { addSpecialTokens: opts.addSpecialTokens ?? false });
  return { prompt, promptTokenIds };
}

/**
 * The template text to use, as transformers' `get_chat_template`: `chatTemplate` when given (or the named template
 * it names); else the tokenizer's single template, or among named ones 'tool_use' when tools are given and it
 * exists, else 'default'.
 *
 * @example
 * resolveChatTemplate(tokenizer, undefined);         // the model's template
 * resolveChatTemplate(tokenizer, 'tool_use');        // a named template of the model (else the text 'tool_use')
 * resolveChatTemplate(tokenizer, '{{ messages }}');  // a template of one's own
 */
export function resolveChatTemplate(tokenizer: Tokenizer, chatTemplate: string | undefined, tools: unknown = null): string {
  const own = tokenizer.chatTemplate;
  if (chatTemplate !== undefined && typeof chatTemplate !== 'string') throw new InvalidArgumentError('chatTemplate', 'chatTemplate must be a string');
  if (Array.isArray(own)) {
    const named = new Map(own.map((t) => [t.name, t.template]));
    if (chatTemplate !== undefined) return named.get(chatTemplate) ?? chatTemplate;
    const pick = tools !== null && tools !== undefined && named.has('tool_use') ? 'tool_use' : 'default';
    const t = named.get(pick);
    if (t === undefined) {
      throw new InvalidArgumentError(
        'chatTemplate',
        `the model has several chat templates and none named 'default': pass chatTemplate, one of ${[...named.keys()].map((n) => `'${n}'`).join(', ')}`,
      );
    }
    return t;
  }
  if (chatTemplate !== undefined) return chatTemplate;
  if (own) return own;
  throw new InvalidArgumentError(
    'chatTemplate',
    'the model has no chat template (tokenizer_config.json has no chat_template and there is no chat_template.jinja): ' +
      'pass chatTemplate (Jinja text; loadChatTemplate reads one from a file)',
  );
}

/**
 * transformers' continue_final_message: the text up to the end of the final message's content (its last text
 * part), keeping the message's leading/trailing spaces only where the template kept them.
 */
function cutAfterFinalMessage(rendered: string, conversation: ConversationMessage[]): string {
  const content = conversation[conversation.length - 1].content;
  let final: string;
  if (typeof content === 'string') final = content;
  else {
    const last = content.at(-1);
    if (!last) throw new InvalidArgumentError('messages', 'continueFinalMessage is set but the final message has no text to continue');
    final = last.text;
  }
  const trimmed = final.trim();
  const at = rendered.lastIndexOf(trimmed);
  if (!rendered.includes(trimmed)) {
    throw new InvalidArgumentError(
      'messages',
      'continueFinalMessage is set but the final message does not appear in the rendered chat: the chat template changes it',
    );
  }
  const left = final.trimStart();
  return rendered.slice(at, at + left.length) === left ? rendered.slice(0, at + left.length) : rendered.slice(0, at + trimmed.length);
}
