/**
 * Chat templates: OpenAI-style messages -> the model's prompt text and ids (apply.ts), and loading a template from
 * a file or text (load.ts). LLM.chat and the OpenAI server use `applyChatTemplate`.
 *
 * @example
 * import { applyChatTemplate } from 'webgpu-llm';
 * const { prompt, promptTokenIds } = applyChatTemplate(llm.engine.tokenizer, [{ role: 'user', content: 'Hi' }], {
 *   chatTemplateKwargs: { enable_thinking: false },
 * });
 */
export { applyChatTemplate, resolveChatTemplate, type ChatPrompt, type ChatTemplateOptions, type ChatTool } from './apply.js';
export { DEFAULT_RENDER_BUDGET, type RenderBudget } from './jinja-env.js';
export { loadChatTemplate, type TextReader } from './load.js';
export type { ChatContentFormat, ChatContentPart, ChatMessage, ChatToolCall, ConversationMessage } from './messages.js';
