import { createHash } from 'node:crypto';

/**
 * The key that groups one thread's requests in the provider's prompt cache (OpenAI's `prompt_cache_key`): its turns
 * and its alternatives share their history as a prompt prefix, and requests with one key are routed to the machines
 * that hold that prefix. A digest of the thread id, so the provider is not handed the Discord id itself; 22
 * characters of base64url (132 bits) keep threads apart, well under OpenAI's limit of 64.
 */
export function promptCacheKey(threadId: string): string {
  return `tf-${createHash('sha256').update(`threadfork prompt cache\n${threadId}`).digest('base64url').slice(0, 22)}`;
}
