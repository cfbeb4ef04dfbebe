import type OpenAI from 'openai';
import type { BackendKind } from '../core/model.ts';
import type { ModelBackend } from '../core/ports.ts';
import { createChatBackend, DEFAULT_CHAT_CONTEXT_TOKENS } from './chat.ts';
import { createConversationsBackend } from './conversations.ts';
import type { AttachmentOptions } from './parts.ts';
import { createResponsesBackend } from './responses.ts';

export interface BackendOptions {
  /** Prompt budget of the chat backend, in estimated tokens: a model's window (default DEFAULT_CHAT_CONTEXT_TOKENS). */
  chatContextTokens?: number | ((model: string) => number);
  /** Where images' and files' bytes are, and the detail of images in forks; without it, text alone is sent. */
  attachments?: AttachmentOptions;
}

/** The backend chosen by BACKEND. */
export function createBackend(kind: BackendKind, client: OpenAI, options: BackendOptions = {}): ModelBackend {
  switch (kind) {
    case 'conversations':
      return createConversationsBackend(client, options.attachments);
    case 'responses':
      return createResponsesBackend(client, options.attachments);
    case 'chat':
      return createChatBackend(client, {
        contextTokens: options.chatContextTokens ?? DEFAULT_CHAT_CONTEXT_TOKENS,
        ...(options.attachments ? { attachments: options.attachments } : {}),
      });
  }
}
