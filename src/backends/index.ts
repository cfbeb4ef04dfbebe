import type OpenAI from 'openai';
import type { BackendKind } from '../config.ts';
import type { ModelBackend } from '../core/ports.ts';
import { createConversationsBackend } from './conversations.ts';

/** The backend chosen by BACKEND. */
export function createBackend(kind: BackendKind, client: OpenAI): ModelBackend {
  switch (kind) {
    case 'conversations':
      return createConversationsBackend(client);
    default:
      throw new Error(`BACKEND=${kind} is not available yet; use BACKEND=conversations`);
  }
}
