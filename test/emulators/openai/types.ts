/** Public and shared types of the OpenAI emulator. */

export interface LatencyOptions {
  /** Delay before the first token, in milliseconds (default 0). */
  firstTokenMs?: number;
  /** Pace of the tokens after the first one (default Infinity: no delay). */
  tokensPerSecond?: number;
}

export interface OpenAIEmulatorOptions {
  port?: number;
  apiKey?: string;
  latency?: LatencyOptions;
  models?: string[];
  /** One context window for every model, overriding the table (CONTEXT_WINDOWS in context.ts). */
  contextWindowTokens?: number;
  /** Context windows by model, over the table. */
  contextWindows?: Record<string, number>;
  /** Prompt caching (prompt-cache.ts); default on. */
  promptCaching?: boolean;
}

export interface FailureSpec {
  /** Route template such as 'POST /v1/responses' or 'POST /v1/conversations/:id/items' (default: any request). */
  route?: string;
  status: number;
  /** How many matching requests fail (default 1). */
  times?: number;
  retryAfterSeconds?: number;
  code?: string;
  message?: string;
  type?: string;
}

export interface RecordedRequest {
  id: number;
  method: string;
  path: string;
  route: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  startedAt: number;
  endedAt: number | undefined;
  conversationId: string | undefined;
  /** Request body size in bytes. */
  bytes: number;
  /** What the model read, for POST /v1/responses, /v1/responses/compact and /v1/chat/completions that got that far. */
  seen?: SeenContext;
}

/** What a compaction item stands for (the emulator reads its own `encrypted_content`). */
export interface CompactionInfo {
  /** How many messages it stands for, counting those of the compaction items it absorbed. */
  messageCount: number;
  /** The first and the last of those messages. */
  first?: { role: Role; text: string };
  last?: { role: Role; text: string };
  /** `rollDigest('', messages)` of those messages, in order (see context.ts). */
  digest: string;
  /** Tokens of the input it compacted (what the model read when it was made). */
  compactedTokens: number;
}

/** What the model read for one request. */
export interface SeenContext {
  model: string;
  /** The messages it read verbatim, oldest first: those after the latest compaction item, less truncated ones. */
  messages: ReplyMessage[];
  /** What the compaction item it read stands for (the latest one of the input), if any. */
  compaction?: CompactionInfo;
  /** What the compaction item this response emitted stands for, when it compacted. */
  compacted?: CompactionInfo;
  /** Input tokens as billed: instructions, messages after the latest compaction item, that item. */
  inputTokens: number;
  /** Of which read from the prompt cache. */
  cachedTokens: number;
  /** Items dropped by `truncation: 'auto'`. */
  truncatedItems: number;
}

export interface ConversationSnapshot {
  id: string;
  metadata: Record<string, string>;
  items: unknown[];
}

export interface OpenAIEmulator {
  /** 'http://127.0.0.1:PORT/v1': pass it to `new OpenAI({ baseURL, apiKey })`. */
  baseURL: string;
  apiKey: string;
  /** Every request, in arrival order. */
  requests: RecordedRequest[];
  setLatency(latency: LatencyOptions): void;
  failNext(failure: FailureSpec): void;
  /** llama.cpp mode: chat completions with n > 1 are rejected with 400. */
  setChatRejectsMultipleChoices(on: boolean): void;
  /** A live conversation: its metadata and its items in order, exactly as the API lists them (order=asc). */
  conversation(id: string): ConversationSnapshot | undefined;
  /** Ids of the live (not deleted) conversations, in creation order. */
  conversationIds(): string[];
  /** A stored response object (any status), or undefined. */
  response(id: string): unknown | undefined;
  /** What the model read for a request (its id in `requests`) or a response (its id), if it got that far. */
  seen(requestOrResponseId: number | string): SeenContext | undefined;
  /** What a compaction item's `encrypted_content` stands for; undefined if this emulator did not make it. */
  compaction(encryptedContent: string): CompactionInfo | undefined;
  /** The context window of a model, in tokens. */
  contextWindow(model: string): number;
  /** Turns prompt caching on or off (off: every request reports 0 cached tokens); reset() restores the option. */
  setPromptCaching(on: boolean): void;
  /** Forgets every cached prefix. */
  clearPromptCache(): void;
  /** Clear the request log, pending failures and all state (conversations, responses, knobs back to the options). */
  reset(): void;
  close(): Promise<void>;
}

export type Role = 'user' | 'assistant' | 'system' | 'developer';

export interface ReplyMessage {
  role: Role;
  text: string;
  /** Images and files the message carries, each with 8 hex chars of the sha256 of its bytes. */
  attachments?: Attachment[];
}

/** An image or file the model sees. */
export interface Attachment {
  kind: 'image' | 'file';
  digest: string;
}

/** Everything the model sees for one reply. */
export interface ReplyInput {
  model: string;
  instructions?: string | undefined;
  messages: ReplyMessage[];
  temperature?: number | undefined;
  /** Index of the choice (Chat Completions `n`); 0 or absent for the first. */
  choiceIndex?: number | undefined;
  /** What the compaction item the model read stands for (for `!context`). */
  compaction?: CompactionInfo | undefined;
  /** Input tokens (for `!context`). */
  inputTokens?: number | undefined;
}

/** A JSON object as received or sent. */
export type Json = Record<string, unknown>;
