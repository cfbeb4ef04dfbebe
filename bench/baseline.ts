/**
 * The naive fork, as the well-known forum answer does it, with the real openai SDK against the same emulator: list all
 * items of the conversation, create one copy conversation per alternative (20 items per call, the API's limit), then
 * ask each copy in turn.
 */
import OpenAI from 'openai';
import type { ResponseInputItem } from 'openai/resources/responses/responses';
import type { World } from '../test/e2e/harness.ts';
import { now } from './common.ts';

export const MODEL = 'gpt-4.1-mini';
const ITEMS_PER_CALL = 20;

export function naiveClient(world: World): OpenAI {
  return new OpenAI({ apiKey: world.openai.apiKey, baseURL: world.openai.baseURL, maxRetries: 0 });
}

/** One streamed response on a conversation; resolves with its text once the stream ended. */
export async function ask(client: OpenAI, conversationId: string, prompt: string): Promise<string> {
  const stream = await client.responses.create({
    model: MODEL,
    conversation: conversationId,
    input: [{ type: 'message', role: 'user', content: prompt }],
    stream: true,
  });
  let text = '';
  for await (const event of stream) if (event.type === 'response.output_text.delta') text += event.delta;
  return text;
}

/** A new conversation holding `items`, 20 per call. */
export async function copyConversation(client: OpenAI, items: readonly ResponseInputItem[]): Promise<string> {
  const conversation = await client.conversations.create({ items: items.slice(0, ITEMS_PER_CALL) });
  for (let i = ITEMS_PER_CALL; i < items.length; i += ITEMS_PER_CALL) {
    await client.conversations.items.create(conversation.id, { items: items.slice(i, i + ITEMS_PER_CALL) });
  }
  return conversation.id;
}

/** All message items of a conversation, oldest first, as input items. */
export async function listAsInput(client: OpenAI, conversationId: string): Promise<ResponseInputItem[]> {
  const items: ResponseInputItem[] = [];
  for await (const item of client.conversations.items.list(conversationId, { order: 'asc', limit: 100 })) {
    if (item.type !== 'message') continue;
    const parts = item.content as { text?: string }[];
    items.push({
      type: 'message',
      role: item.role as 'user' | 'assistant',
      content: parts.map((p) => p.text ?? '').join(''),
    });
  }
  return items;
}

/** The naive fork into `count` alternatives of `prompt`; returns the wall time and the texts. */
export async function naiveAlternatives(
  client: OpenAI,
  conversationId: string,
  count: number,
  prompt: string,
): Promise<{ ms: number; texts: string[] }> {
  const start = now();
  const items = await listAsInput(client, conversationId);
  const copies: string[] = [];
  for (let k = 0; k < count; k++) copies.push(await copyConversation(client, items));
  const texts: string[] = [];
  for (const copy of copies) texts.push(await ask(client, copy, prompt));
  return { ms: now() - start, texts };
}
