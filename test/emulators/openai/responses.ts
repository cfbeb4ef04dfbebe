/** /v1/responses: create (JSON or SSE), retrieve, delete, input items; the conversation lock. */

import {
  compactionOf,
  DEFAULT_COMPACT_THRESHOLD_RATIO,
  latestCompaction,
  MIN_COMPACT_THRESHOLD,
  render,
} from './context.ts';
import { getConversation } from './conversations.ts';
import {
  badRequest,
  conversationLocked,
  invalidType,
  missingParam,
  modelNotFound,
  notFound,
} from './errors.ts';
import { SseWriter, sendJson } from './http.ts';
import { newItemId, newMessageId, newResponseId, nowSeconds } from './ids.ts';
import { isObject, normalizeInput, withId } from './input.ts';
import { paginate } from './list.ts';
import { refuseWithoutVision } from './media.ts';
import { pace } from './pacing.ts';
import { firstTokenMs, PromptCache, responsesPrompt } from './prompt-cache.ts';
import { generateReply, tokenize } from './reply.ts';
import type { Ctx, Route } from './router.ts';
import type { ConversationState, EmulatorState, ResponseState } from './state.ts';
import type { Json, SeenContext } from './types.ts';
import { bodyObject, metadataOf, optionalBoolean, optionalNumber, optionalString } from './validate.ts';

/** The conversation id of a `conversation` parameter (a string or {id}), if any. */
export function conversationIdOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.id === 'string') return v.id;
  return undefined;
}

function storedResponse(state: EmulatorState, id: string): ResponseState {
  const r = state.responses.get(id);
  if (!r?.stored) throw notFound(`Response with id '${id}' not found.`);
  return r;
}

/**
 * History of a chain: what the previous responses saw, then their output (unless cancelled), read back only as far
 * as the latest compaction item (the model ignores what precedes it). Items are shared, never changed.
 */
export function chainHistory(prev: ResponseState): Json[] {
  const segments: Json[][] = [];
  for (let r: ResponseState | undefined = prev; r; r = r.parent) {
    const output = r.object.status === 'cancelled' ? [] : (r.object.output as Json[]);
    const own = [...r.inputItems, ...output];
    segments.push(own);
    if (own.some((i) => i.type === 'compaction')) break;
    if (!r.parent) segments.push(r.base);
  }
  return segments.reverse().flat();
}

/** A conversation's items from its latest compaction item on (what a turn on it can read). */
function conversationHistory(c: ConversationState): Json[] {
  return c.items.slice(Math.max(0, latestCompaction(c.items)));
}

/** `context_management`: the compaction threshold, if compaction is on. */
function compactThresholdOf(v: unknown, window: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidType('context_management', 'an array', v);
  if (v.length === 0)
    throw badRequest(
      "Invalid 'context_management': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'context_management',
      'empty_array',
    );
  let threshold: number | undefined;
  v.forEach((entry, i) => {
    const param = `context_management[${i}]`;
    if (!isObject(entry)) throw invalidType(param, 'an object', entry);
    if (entry.type !== 'compaction')
      throw badRequest(
        `Invalid value: '${String(entry.type)}'. Supported values are: 'compaction'.`,
        `${param}.type`,
        'invalid_value',
      );
    const n = entry.compact_threshold;
    if (n === undefined || n === null) {
      threshold = Math.floor(window * DEFAULT_COMPACT_THRESHOLD_RATIO);
      return;
    }
    if (typeof n !== 'number' || !Number.isInteger(n))
      throw invalidType(`${param}.compact_threshold`, 'an integer', n);
    if (n < MIN_COMPACT_THRESHOLD)
      throw badRequest(
        `Invalid '${param}.compact_threshold': integer below minimum value. Expected a value >= ${MIN_COMPACT_THRESHOLD}, but got ${n} instead.`,
        `${param}.compact_threshold`,
        'integer_below_min_value',
      );
    threshold = n;
  });
  return threshold;
}

function truncationOf(v: unknown): boolean {
  if (v === undefined || v === null || v === 'disabled') return false;
  if (v === 'auto') return true;
  throw badRequest(
    `Invalid value: '${String(v)}'. Supported values are: 'auto' and 'disabled'.`,
    'truncation',
    'invalid_value',
  );
}

interface TurnParams {
  model: string;
  instructions: string | undefined;
  temperature: number | undefined;
  maxOutputTokens: number | undefined;
  store: boolean;
  stream: boolean;
  metadata: Record<string, string>;
  conversation: ConversationState | undefined;
  previousResponseId: string | undefined;
  previous: ResponseState | undefined;
  history: Json[];
  input: Json[];
  truncation: boolean;
  compactThreshold: number | undefined;
  /** The input ended with a `compaction_trigger` item: compact whatever the size. */
  compactNow: boolean;
  promptCacheKey: string | undefined;
}

function parseTurn(state: EmulatorState, body: unknown): TurnParams {
  const b = bodyObject(body);
  const model = b.model;
  if (model === undefined || model === null) throw missingParam('model');
  if (typeof model !== 'string') throw invalidType('model', 'a string', model);
  const instructions = optionalString(b, 'instructions');
  const temperature = optionalNumber(b, 'temperature', { min: 0, max: 2 });
  const maxOutputTokens = optionalNumber(b, 'max_output_tokens', { min: 16, integer: true });
  const store = optionalBoolean(b, 'store') ?? true;
  const stream = optionalBoolean(b, 'stream') ?? false;
  const metadata = metadataOf(b.metadata) ?? {};
  const hasConversation = b.conversation !== undefined && b.conversation !== null;
  const previousResponseId = optionalString(b, 'previous_response_id');
  if (hasConversation && previousResponseId !== undefined) {
    throw badRequest(
      "Mutually exclusive parameters. Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
      null,
      'mutually_exclusive_parameters',
    );
  }
  if (!state.config.models.includes(model)) throw modelNotFound(model);
  const truncation = truncationOf(b.truncation);
  const compactThreshold = compactThresholdOf(b.context_management, state.contextWindow(model));
  const promptCacheKey = optionalString(b, 'prompt_cache_key');
  let conversation: ConversationState | undefined;
  let previous: ResponseState | undefined;
  let history: Json[] = [];
  if (hasConversation) {
    const id = conversationIdOf(b.conversation);
    if (id === undefined)
      throw invalidType('conversation', 'one of a string or an object with an id', b.conversation);
    if (!id.startsWith('conv_')) {
      throw badRequest(
        `Invalid 'conversation': '${id}'. Expected an ID that begins with 'conv_'.`,
        'conversation',
        'invalid_value',
      );
    }
    conversation = getConversation(state, id, 'conversation');
    if (conversation.lockedBy !== undefined) throw conversationLocked();
    history = conversationHistory(conversation);
  } else if (previousResponseId !== undefined) {
    const prev = state.responses.get(previousResponseId);
    if (!prev?.stored) {
      throw badRequest(
        `Previous response with id '${previousResponseId}' not found.`,
        'previous_response_id',
        'previous_response_not_found',
      );
    }
    previous = prev;
    history = chainHistory(prev);
  }
  const input = normalizeInput(b.input, 'input', (id) => state.items.get(id));
  const compactNow = input[input.length - 1]?.type === 'compaction_trigger';
  if (compactNow) input.pop();
  return {
    model,
    instructions,
    temperature,
    maxOutputTokens,
    store,
    stream,
    metadata,
    conversation,
    previousResponseId,
    previous,
    history,
    input,
    truncation,
    compactThreshold,
    compactNow,
    promptCacheKey,
  };
}

function responseObject(id: string, t: TurnParams): Json {
  return {
    id,
    object: 'response',
    created_at: nowSeconds(),
    status: 'in_progress',
    background: false,
    completed_at: null,
    conversation: t.conversation ? { id: t.conversation.id } : null,
    error: null,
    incomplete_details: null,
    instructions: t.instructions ?? null,
    max_output_tokens: t.maxOutputTokens ?? null,
    max_tool_calls: null,
    model: t.model,
    output: [],
    parallel_tool_calls: true,
    previous_response_id: t.previousResponseId ?? null,
    prompt_cache_key: t.promptCacheKey ?? null,
    reasoning: { effort: null, summary: null },
    safety_identifier: null,
    service_tier: 'default',
    store: t.store,
    temperature: t.temperature ?? 1,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: [],
    top_logprobs: 0,
    top_p: 1,
    truncation: t.truncation ? 'auto' : 'disabled',
    // `usage` appears when the response ends (the real API sends null meanwhile; the spec wants an object or nothing).
    metadata: t.metadata,
  };
}

async function createResponse({ state, body, res, rec }: Ctx): Promise<void> {
  const t = parseTurn(state, body);
  // Ids first, so the token counts cached on these objects serve the next turns that read them from storage.
  const inputItems = t.input.map(withId);
  const seen = render([...t.history, ...inputItems], {
    instructions: t.instructions,
    window: state.contextWindow(t.model),
    truncation: t.truncation,
    sealer: state.sealer,
  });
  const messages = seen.messages;
  refuseWithoutVision(t.model, messages, 'responses');
  const inputTokens = seen.inputTokens;
  // Server-side compaction: one item standing for all the model read (the compaction it read, the messages after).
  const compacting = t.compactNow || (t.compactThreshold !== undefined && inputTokens > t.compactThreshold);
  const compacted = compacting ? compactionOf(seen.compaction, messages, inputTokens) : undefined;
  const compactionItem: Json | undefined = compacted && {
    id: newItemId('cmp'),
    type: 'compaction',
    encrypted_content: state.sealer.seal(compacted),
  };
  const id = newResponseId();
  const conv = t.conversation;
  if (conv) rec.conversationId = conv.id;
  state.remember(inputItems);
  if (conv) {
    conv.lockedBy = id;
    conv.items.push(...inputItems);
  }
  const obj = responseObject(id, t);
  // The prompt as the cache sees it; cached only once this request reaches its first output token (start()).
  const partition = PromptCache.partition(t.model, t.promptCacheKey);
  const prompt = responsesPrompt(t.instructions, seen.items);
  const cachedTokens = state.promptCache.lookup(partition, prompt);
  const seenCtx: SeenContext = {
    model: t.model,
    messages,
    ...(seen.compaction ? { compaction: seen.compaction } : {}),
    ...(compacted ? { compacted } : {}),
    inputTokens,
    cachedTokens,
    truncatedItems: seen.truncatedItems,
  };
  const rs: ResponseState = {
    id,
    object: obj,
    parent: t.previous,
    base: t.previous ? [] : t.history,
    inputItems,
    stored: t.store,
    seen: seenCtx,
  };
  rec.seen = seenCtx;
  state.responses.set(id, rs);

  const reply = generateReply({
    model: t.model,
    instructions: t.instructions,
    messages,
    temperature: t.temperature,
    compaction: seen.compaction,
    inputTokens,
  });
  let tokens = tokenize(reply.text);
  const truncated = t.maxOutputTokens !== undefined && tokens.length > t.maxOutputTokens;
  if (truncated) tokens = tokens.slice(0, t.maxOutputTokens);

  const itemId = newMessageId();
  const partType = reply.refusal ? 'refusal' : 'output_text';
  const emptyPart = (): Json =>
    reply.refusal
      ? { type: 'refusal', refusal: '' }
      : { type: 'output_text', annotations: [], logprobs: [], text: '' };
  const fullPart = (text: string): Json =>
    reply.refusal
      ? { type: 'refusal', refusal: text }
      : { type: 'output_text', annotations: [], logprobs: [], text };
  const item = (status: string, content: Json[]): Json => ({
    id: itemId,
    type: 'message',
    status,
    content,
    role: 'assistant',
  });

  const ac = new AbortController();
  state.running.add(ac);
  const onClose = () => {
    if (!res.writableFinished) ac.abort();
  };
  res.on('close', onClose);

  const sse = t.stream ? new SseWriter(res) : undefined;
  let seq = 0;
  const emit = (type: string, fields: Json) => sse?.event(type, { type, ...fields, sequence_number: seq++ });
  // The compaction item comes first (it is made before the reply), the message after it.
  const lead = compactionItem ? [compactionItem] : [];
  const base = { item_id: itemId, output_index: lead.length, content_index: 0 };
  emit('response.created', { response: obj });
  emit('response.in_progress', { response: obj });
  if (compactionItem) {
    obj.output = [...lead];
    emit('response.output_item.added', { output_index: 0, item: compactionItem });
    emit('response.output_item.done', { output_index: 0, item: compactionItem });
  }
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    state.promptCache.write(partition, prompt);
    obj.output = [...lead, item('in_progress', [])];
    emit('response.output_item.added', { output_index: lead.length, item: item('in_progress', []) });
    emit('response.content_part.added', { ...base, part: emptyPart() });
  };
  let text = '';
  const ok = await pace(
    tokens.length,
    { ...state.latency, firstTokenMs: firstTokenMs(state.latency.firstTokenMs, cachedTokens, inputTokens) },
    (i) => {
      start();
      const delta = tokens[i] ?? '';
      text += delta;
      obj.output = [...lead, item('in_progress', [fullPart(text)])];
      if (reply.refusal) emit('response.refusal.delta', { ...base, delta });
      else emit('response.output_text.delta', { ...base, delta, logprobs: [] });
    },
    ac.signal,
  );
  state.running.delete(ac);
  res.off('close', onClose);
  if (conv?.lockedBy === id) conv.lockedBy = undefined;

  if (!ok) {
    // The client went away (or the emulator was reset): cancelled, and the output is not added to the conversation.
    obj.status = 'cancelled';
    obj.output = started ? [...lead, item('incomplete', [fullPart(text)])] : lead;
    if (!res.destroyed) res.destroy();
    return;
  }
  start();
  const finalItem = item(truncated ? 'incomplete' : 'completed', [fullPart(text)]);
  obj.output = [...lead, finalItem];
  obj.status = truncated ? 'incomplete' : 'completed';
  obj.completed_at = truncated ? null : nowSeconds();
  obj.incomplete_details = truncated ? { reason: 'max_output_tokens' } : null;
  obj.usage = {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: cachedTokens, cache_write_tokens: 0 },
    output_tokens: tokens.length,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + tokens.length,
  };
  state.remember([...lead, finalItem]);
  if (conv && state.conversations.get(conv.id) === conv) conv.items.push(...lead, structuredClone(finalItem));

  if (!sse) {
    sendJson(res, 200, obj);
    return;
  }
  if (partType === 'refusal') emit('response.refusal.done', { ...base, refusal: text });
  else emit('response.output_text.done', { ...base, text, logprobs: [] });
  emit('response.content_part.done', { ...base, part: fullPart(text) });
  emit('response.output_item.done', { output_index: lead.length, item: finalItem });
  emit(truncated ? 'response.incomplete' : 'response.completed', { response: obj });
  sse.end();
}

function retrieveResponse({ state, params, res }: Ctx): void {
  sendJson(res, 200, storedResponse(state, params.id ?? '').object);
}

function deleteResponse({ state, params, res }: Ctx): void {
  const r = storedResponse(state, params.id ?? '');
  state.responses.delete(r.id);
  sendJson(res, 200, { id: r.id, object: 'response', deleted: true });
}

function listInputItems({ state, params, query, res }: Ctx): void {
  sendJson(res, 200, paginate(storedResponse(state, params.id ?? '').inputItems, query));
}

export const responseRoutes: Route[] = [
  { method: 'POST', path: '/v1/responses', handler: createResponse },
  { method: 'GET', path: '/v1/responses/:id', handler: retrieveResponse },
  { method: 'DELETE', path: '/v1/responses/:id', handler: deleteResponse },
  { method: 'GET', path: '/v1/responses/:id/input_items', handler: listInputItems },
];
