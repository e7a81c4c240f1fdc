/** webgpu-llm's public API (the platform-independent part; entry points add the bindings). */
export { LLM, setDefaultPlatform, type ChatOptions, type GenerateOptions, type LLMOptions } from './llm.js';
export { SamplingParams, type SamplingParamsInit, type LogitsProcessor } from './sampling-params.js';
export type { ToolCall, ToolChoice } from './tool-calls/forced-tools.js';
export { TOOL_PARSERS, type ToolParser } from './tool-calls/tool-parsers.js';
export { REASONING_PARSERS, type ReasoningParser } from './tool-calls/reasoning-parsers.js';
export type { RequestOutput, CompletionOutput, Logprob, SampleLogprobs, RequestOutputJSON, CompletionOutputJSON, LogprobsJSON } from './outputs.js';
export { requestOutputToJSON, completionOutputToJSON } from './outputs.js';
export { InvalidArgumentError, ModelFileError, CapacityError } from './errors.js';
export type { Platform, ModelSource, ByteSource, DownloadProgress, OpenModelOptions } from './platform.js';
export { Tokenizer, IncrementalDetokenizer } from './tokenizer/index.js';
export type { ModelConfig } from './config/model-config.js';
export { parseModelConfig, supportedArchitectures } from './models/registry.js';
export type { EngineOptions, PromptInput } from './engine/llm-engine.js';
export { applyChatTemplate, loadChatTemplate, resolveChatTemplate } from './chat/index.js';
export type { ChatMessage, ChatContentPart, ChatToolCall, ChatTool, ChatTemplateOptions, ChatPrompt, ChatContentFormat, TextReader } from './chat/index.js';
export { BeamSearchParams, beamSearchScore, type BeamSearchParamsInit, type BeamSearchOutput, type BeamSearchSequence } from './beam-search.js';
