// Interactions: INTERACTION_CREATE payloads, the callback (types 4-9) and the interaction webhook.
import { type Ctx, later } from './context.ts';
import { Errors, FormErrorCollector, formError } from './errors.ts';
import { randomToken } from './ids.ts';
import {
  createMessage,
  editMessage,
  type FileInput,
  isEmptyPatch,
  type MessagePatch,
  patchFromBody,
} from './messages.ts';
import { checkMessageLimits, MessageFlags } from './rules.ts';
import { isLoading, type Json } from './state.ts';
import type { InteractionRec, MessageRec } from './types.ts';

export const InteractionType = { APPLICATION_COMMAND: 2, MESSAGE_COMPONENT: 3, AUTOCOMPLETE: 4 } as const;

export const CallbackType = {
  CHANNEL_MESSAGE: 4,
  DEFERRED_CHANNEL_MESSAGE: 5,
  DEFERRED_UPDATE_MESSAGE: 6,
  UPDATE_MESSAGE: 7,
  AUTOCOMPLETE_RESULT: 8,
  MODAL: 9,
} as const;

const ALLOWED_CALLBACKS: Record<number, number[]> = {
  2: [4, 5, 9],
  3: [4, 5, 6, 7, 9],
  4: [8],
};

type Obj = Record<string, unknown>;

export function createInteraction(
  ctx: Ctx,
  input: { type: number; channelId: string; userId: string; data: Json; sourceMessage?: MessageRec },
): InteractionRec {
  const { store } = ctx;
  const channel = store.channels.get(input.channelId);
  if (!channel) throw new Error(`unknown channel ${input.channelId}`);
  const id = store.ids.next();
  const token = `aW50ZXJhY3Rpb246${id}:${randomToken(48)}`;
  const guildId = channel.guildId;
  const memberPerms = store.channelPermissionsOf(input.userId, channel.id);
  const payload: Json = {
    id,
    application_id: store.applicationId,
    type: input.type,
    data: input.data,
    guild: { id: guildId, locale: 'en-US', features: [] },
    guild_id: guildId,
    guild_locale: 'en-US',
    channel: { ...store.channelJson(channel, input.userId), permissions: memberPerms.toString() },
    channel_id: channel.id,
    member: { ...store.memberJson(input.userId, true, guildId), permissions: memberPerms.toString() },
    token,
    version: 1,
    app_permissions: store.channelPermissionsOf(store.botUserId, channel.id).toString(),
    locale: 'en-US',
    entitlements: [],
    authorizing_integration_owners: { '0': guildId },
    context: 0,
    attachment_size_limit: 10 * 1024 * 1024,
  };
  if (input.sourceMessage) payload.message = store.messageJson(input.sourceMessage);
  const rec: InteractionRec = {
    id,
    token,
    type: input.type,
    channelId: channel.id,
    userId: input.userId,
    data: input.data,
    payload,
    createdAt: Date.now(),
    responded: false,
    followupIds: [],
    expired: false,
  };
  if (input.sourceMessage) rec.sourceMessageId = input.sourceMessage.id;
  store.interactions.set(id, rec);
  store.interactionsByToken.set(token, rec);
  later(ctx, ctx.config.interactionAckMs, () => {
    rec.expired = true;
    if (rec.ackType === undefined && !rec.error) rec.error = { code: 10062, message: 'Unknown interaction' };
    store.changed();
  });
  ctx.gateway.dispatch('INTERACTION_CREATE', guildId, () => payload);
  return rec;
}

function responseMessageFields(ctx: Ctx, i: InteractionRec, data: Obj, files: FileInput[]) {
  const patch = patchFromBody(data, files);
  const ephemeral = ((patch.flags ?? 0) & MessageFlags.EPHEMERAL) !== 0;
  return {
    channelId: i.channelId,
    authorId: ctx.store.botUserId,
    type: i.type === InteractionType.APPLICATION_COMMAND ? 20 : 0,
    ...(patch.content !== undefined ? { content: patch.content } : {}),
    ...(patch.embeds !== undefined ? { embeds: patch.embeds } : {}),
    ...(patch.components !== undefined ? { components: patch.components } : {}),
    ...(patch.files !== undefined ? { files: patch.files } : {}),
    ...(patch.allowedMentions !== undefined ? { allowedMentions: patch.allowedMentions } : {}),
    flags:
      (patch.flags ?? 0) & (MessageFlags.SUPPRESS_NOTIFICATIONS | MessageFlags.IS_COMPONENTS_V2 | (1 << 2)),
    ephemeral,
    ...(ephemeral ? { visibleTo: i.userId } : {}),
    interactionId: i.id,
    webhookId: ctx.store.applicationId,
    tts: data.tts === true,
  };
}

function hasVisibleContent(m: MessageRec): boolean {
  return m.content !== '' || m.embeds.length > 0 || m.components.length > 0 || m.attachments.length > 0;
}

/** POST /interactions/:id/:token/callback. Returns the callback response (with_response=true) body. */
export function handleCallback(
  ctx: Ctx,
  id: string,
  token: string,
  body: Obj,
  files: FileInput[],
  withResponse: boolean,
): Json | undefined {
  const { store } = ctx;
  const i = store.interactions.get(id);
  if (!i || i.token !== token) throw Errors.unknownInteraction();
  if (i.ackType !== undefined) {
    const err = Errors.alreadyAcked();
    i.error = { code: err.code, message: err.message };
    store.changed();
    throw err;
  }
  if (i.expired || Date.now() > i.createdAt + ctx.config.interactionAckMs) {
    i.expired = true;
    i.error = { code: 10062, message: 'Unknown interaction' };
    store.changed();
    throw Errors.unknownInteraction();
  }
  const type = Number(body.type);
  if (!(ALLOWED_CALLBACKS[i.type] ?? []).includes(type)) {
    throw formError(['type'], 'INTERACTION_RESPONSE_TYPE_INVALID', 'Invalid interaction response type');
  }
  const data: Obj = typeof body.data === 'object' && body.data !== null ? (body.data as Obj) : {};
  let message: MessageRec | undefined;
  switch (type) {
    case CallbackType.CHANNEL_MESSAGE: {
      checkMessageLimits(data);
      const patch = patchFromBody(data, files);
      if (isEmptyPatch(patch, data)) throw Errors.emptyMessage();
      message = createMessage(ctx, responseMessageFields(ctx, i, data, files));
      i.originalMessageId = message.id;
      i.responseMessageId = message.id;
      i.responded = true;
      break;
    }
    case CallbackType.DEFERRED_CHANNEL_MESSAGE: {
      const fields = responseMessageFields(ctx, i, { flags: data.flags }, []);
      message = createMessage(ctx, { ...fields, flags: fields.flags | MessageFlags.LOADING });
      i.originalMessageId = message.id;
      i.responseMessageId = message.id;
      break;
    }
    case CallbackType.DEFERRED_UPDATE_MESSAGE:
      if (i.sourceMessageId !== undefined) i.responseMessageId = i.sourceMessageId;
      break;
    case CallbackType.UPDATE_MESSAGE: {
      const source = i.sourceMessageId !== undefined ? store.messages.get(i.sourceMessageId) : undefined;
      if (!source || source.deleted) throw Errors.unknownMessage();
      checkMessageLimits(data, source.flags);
      editMessage(ctx, source, patchFromBody(data, files));
      message = source;
      i.responseMessageId = source.id;
      i.responded = true;
      break;
    }
    case CallbackType.AUTOCOMPLETE_RESULT:
      checkChoices(data);
      break;
    default:
      break;
  }
  i.ackType = type;
  i.ackData = data;
  store.changed();
  if (!withResponse) return undefined;
  return {
    interaction: {
      id: i.id,
      type: i.type,
      activity_instance_id: null,
      response_message_id: message?.id ?? null,
      response_message_loading: message ? isLoading(message) : false,
      response_message_ephemeral: message?.ephemeral ?? false,
    },
    resource: { type, ...(message ? { message: store.messageJson(message) } : {}) },
  };
}

function checkChoices(data: Obj): void {
  const c = new FormErrorCollector();
  const choices = data.choices;
  if (!Array.isArray(choices)) {
    c.add(['data', 'choices'], 'BASE_TYPE_REQUIRED', 'This field is required');
  } else {
    if (choices.length > 25)
      c.add(['data', 'choices'], 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    choices.forEach((ch: unknown, n: number) => {
      const o = (typeof ch === 'object' && ch !== null ? ch : {}) as Obj;
      const name = typeof o.name === 'string' ? o.name : '';
      if (name.length < 1 || name.length > 100) {
        c.add(['data', 'choices', n, 'name'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
      }
      if (typeof o.value === 'string' && o.value.length > 100) {
        c.add(['data', 'choices', n, 'value'], 'BASE_TYPE_MAX_LENGTH', 'Must be 100 or fewer in length.');
      }
    });
  }
  c.throwIfAny();
}

// ---- the interaction webhook (/webhooks/:application_id/:token...) ----

export function webhookInteraction(ctx: Ctx, appId: string, token: string): InteractionRec {
  if (appId !== ctx.store.applicationId) throw Errors.unknownWebhook();
  const i = ctx.store.interactionsByToken.get(token);
  if (!i) throw Errors.invalidWebhookToken();
  if (Date.now() > i.createdAt + ctx.config.interactionTokenTtlMs) throw Errors.invalidWebhookToken();
  return i;
}

/** The message @original refers to: the response (4/5), or the component's message (6/7). */
export function originalOf(ctx: Ctx, i: InteractionRec): MessageRec {
  const id =
    i.originalMessageId ??
    (i.ackType === CallbackType.DEFERRED_UPDATE_MESSAGE || i.ackType === CallbackType.UPDATE_MESSAGE
      ? i.sourceMessageId
      : undefined);
  const m = id !== undefined ? ctx.store.messages.get(id) : undefined;
  if (!m || m.deleted) throw Errors.unknownMessage();
  return m;
}

/** A message this interaction's webhook may address by id. */
export function webhookMessage(ctx: Ctx, i: InteractionRec, messageId: string): MessageRec {
  const allowed = messageId === i.originalMessageId || i.followupIds.includes(messageId);
  const viaSource =
    messageId === i.sourceMessageId &&
    (i.ackType === CallbackType.DEFERRED_UPDATE_MESSAGE || i.ackType === CallbackType.UPDATE_MESSAGE);
  const m = ctx.store.messages.get(messageId);
  if (!m || m.deleted || !(allowed || viaSource)) throw Errors.unknownMessage();
  return m;
}

export function editWebhookMessage(
  ctx: Ctx,
  i: InteractionRec,
  m: MessageRec,
  body: Obj,
  files: FileInput[],
): void {
  checkMessageLimits(body, m.flags);
  const patch: MessagePatch = patchFromBody(body, files);
  const wasLoading = isLoading(m);
  if (wasLoading) m.flags &= ~MessageFlags.LOADING;
  try {
    editMessage(ctx, m, patch);
  } catch (err) {
    if (wasLoading) m.flags |= MessageFlags.LOADING;
    throw err;
  }
  const isResponse = m.id === i.responseMessageId || m.id === i.originalMessageId;
  if (isResponse && !i.responded && (hasVisibleContent(m) || m.id === i.sourceMessageId)) {
    i.responded = true;
    i.responseMessageId = m.id;
    ctx.store.changed();
  }
}

/** POST /webhooks/:app/:token: a follow-up (the first one after a defer replaces the loading message). */
export function createFollowup(ctx: Ctx, i: InteractionRec, body: Obj, files: FileInput[]): MessageRec {
  if (i.ackType === undefined) throw Errors.unknownWebhook();
  checkMessageLimits(body);
  const patch = patchFromBody(body, files);
  if (isEmptyPatch(patch, body)) throw Errors.emptyMessage();
  const original =
    i.originalMessageId !== undefined ? ctx.store.messages.get(i.originalMessageId) : undefined;
  if (original && !original.deleted && isLoading(original)) {
    editWebhookMessage(ctx, i, original, body, files);
    return original;
  }
  const m = createMessage(ctx, { ...responseMessageFields(ctx, i, body, files), type: 0 });
  i.followupIds.push(m.id);
  ctx.store.changed();
  return m;
}
