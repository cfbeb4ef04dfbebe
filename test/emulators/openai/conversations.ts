/** /v1/conversations and /v1/conversations/:id/items. */
import { conversationNotFound, invalidType, missingParam, notFound } from './errors.ts';
import { sendJson } from './http.ts';
import { newConversationId, nowSeconds } from './ids.ts';
import { normalizeInput, withId } from './input.ts';
import { listPage, paginate } from './list.ts';
import type { Ctx, Route } from './router.ts';
import type { ConversationState, EmulatorState } from './state.ts';
import type { Json } from './types.ts';
import { bodyObject, maxItems, metadataOf } from './validate.ts';

export const MAX_ITEMS_PER_CALL = 20;

export function conversationResource(c: ConversationState): Json {
  return { id: c.id, object: 'conversation', created_at: c.createdAt, metadata: { ...c.metadata } };
}

export function getConversation(
  state: EmulatorState,
  id: string,
  param: string | null = null,
): ConversationState {
  const c = state.conversations.get(id);
  if (!c) throw conversationNotFound(id, param);
  return c;
}

/** Validates up to 20 input items and gives them ids (not yet stored). */
function itemsFromBody(state: EmulatorState, items: unknown): Json[] {
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) throw invalidType('items', 'an array', items);
  maxItems(items, 'items', MAX_ITEMS_PER_CALL);
  return normalizeInput(items, 'items', (id) => state.items.get(id)).map(withId);
}

function createConversation({ state, body, res, rec }: Ctx): void {
  const b = bodyObject(body);
  const metadata = metadataOf(b.metadata) ?? {};
  const items = itemsFromBody(state, b.items);
  const c: ConversationState = {
    id: newConversationId(),
    createdAt: nowSeconds(),
    metadata,
    items,
    lockedBy: undefined,
  };
  state.conversations.set(c.id, c);
  state.remember(items);
  rec.conversationId = c.id;
  sendJson(res, 200, conversationResource(c));
}

function retrieveConversation({ state, params, res }: Ctx): void {
  sendJson(res, 200, conversationResource(getConversation(state, params.id ?? '')));
}

function updateConversation({ state, params, body, res }: Ctx): void {
  const c = getConversation(state, params.id ?? '');
  const b = bodyObject(body);
  const metadata = metadataOf(b.metadata);
  if (metadata !== undefined) c.metadata = metadata;
  sendJson(res, 200, conversationResource(c));
}

function deleteConversation({ state, params, res }: Ctx): void {
  const c = getConversation(state, params.id ?? '');
  state.conversations.delete(c.id);
  sendJson(res, 200, { id: c.id, object: 'conversation.deleted', deleted: true });
}

function listItems({ state, params, query, res }: Ctx): void {
  const c = getConversation(state, params.id ?? '');
  sendJson(res, 200, paginate(c.items, query));
}

function createItems({ state, params, body, res }: Ctx): void {
  const c = getConversation(state, params.id ?? '');
  const b = bodyObject(body);
  if (b.items === undefined || b.items === null) throw missingParam('items');
  const items = itemsFromBody(state, b.items);
  c.items.push(...items);
  state.remember(items);
  sendJson(res, 200, listPage(structuredClone(items), false));
}

function findItem(c: ConversationState, itemId: string): number {
  const idx = c.items.findIndex((i) => i.id === itemId);
  if (idx === -1) throw notFound(`Item with id '${itemId}' not found.`);
  return idx;
}

function retrieveItem({ state, params, res }: Ctx): void {
  const c = getConversation(state, params.id ?? '');
  sendJson(res, 200, c.items[findItem(c, params.item_id ?? '')]);
}

function deleteItem({ state, params, res }: Ctx): void {
  const c = getConversation(state, params.id ?? '');
  c.items.splice(findItem(c, params.item_id ?? ''), 1);
  sendJson(res, 200, conversationResource(c));
}

export const conversationRoutes: Route[] = [
  { method: 'POST', path: '/v1/conversations', handler: createConversation },
  { method: 'GET', path: '/v1/conversations/:id', handler: retrieveConversation },
  { method: 'POST', path: '/v1/conversations/:id', handler: updateConversation },
  { method: 'DELETE', path: '/v1/conversations/:id', handler: deleteConversation },
  { method: 'GET', path: '/v1/conversations/:id/items', handler: listItems },
  { method: 'POST', path: '/v1/conversations/:id/items', handler: createItems },
  { method: 'GET', path: '/v1/conversations/:id/items/:item_id', handler: retrieveItem },
  { method: 'DELETE', path: '/v1/conversations/:id/items/:item_id', handler: deleteItem },
];
