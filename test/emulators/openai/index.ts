/**
 * OpenAI API emulator for tests: conversations, responses (JSON and SSE), chat completions, models, on
 * 127.0.0.1, faithful enough for the official `openai` SDK. The reply generator is in reply.ts.
 */

export {
  COMPACTION_ITEM_TOKENS,
  CONTEXT_EXCEEDED_MESSAGE,
  CONTEXT_WINDOWS,
  DEFAULT_CONTEXT_WINDOW,
  rollDigest,
} from './context.ts';
export { CONVERSATION_LOCKED_MESSAGE } from './errors.ts';
export {
  contextLine,
  countTokens,
  generateReply,
  REFUSAL_TEXT,
  replyFor,
  THINK_PREFIX,
  tokenize,
} from './reply.ts';
export { createOpenAIEmulator, DEFAULT_API_KEY, DEFAULT_MODELS } from './server.ts';
export type {
  CompactionInfo,
  ConversationSnapshot,
  FailureSpec,
  LatencyOptions,
  OpenAIEmulator,
  OpenAIEmulatorOptions,
  RecordedRequest,
  ReplyInput,
  ReplyMessage,
  SeenContext,
} from './types.ts';
