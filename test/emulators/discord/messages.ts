import { createHmac, randomBytes } from 'node:crypto';
// Creating, editing and deleting messages, with mentions, attachments and gateway dispatches.
import type { Ctx } from './context.ts';
import { Errors, formError } from './errors.ts';
import { Intents, type Session } from './gateway.ts';
import { computePinged, parseMentions } from './mentions.ts';
import { has, P } from './permissions.ts';
import { MessageFlags, mentionableText } from './rules.ts';
import { isThread, type Json } from './state.ts';
import type {
  AllowedMentions,
  AttachmentRec,
  AttachmentServe,
  ChannelRec,
  MessageRec,
  Pinged,
} from './types.ts';

export interface FileInput {
  filename: string;
  data: Buffer;
  contentType?: string;
  serve?: AttachmentServe;
}

export interface NewMessage {
  channelId: string;
  authorId: string;
  content?: string;
  embeds?: unknown[];
  components?: unknown[];
  flags?: number;
  tts?: boolean;
  nonce?: string | number;
  files?: FileInput[];
  allowedMentions?: AllowedMentions | null;
  referenceId?: string;
  type?: number;
  ephemeral?: boolean;
  visibleTo?: string;
  interactionId?: string;
  webhookId?: string;
}

export interface MessagePatch {
  content?: string;
  embeds?: unknown[];
  components?: unknown[];
  flags?: number;
  allowedMentions?: AllowedMentions | null;
  /** Ids of existing attachments to keep (absent: keep all). */
  keepAttachments?: string[];
  files?: FileInput[];
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How long an attachment URL works, as Discord's signed CDN URLs (about a day). */
export const ATTACHMENT_URL_TTL_MS = 24 * 60 * 60_000;
const URL_SECRET = randomBytes(16);

/** The signature of an attachment URL (Discord's `hm`): an HMAC of its path and times. */
export function attachmentSignature(pathname: string, ex: string, is: string): string {
  return createHmac('sha256', URL_SECRET).update(`${pathname}?ex=${ex}&is=${is}`).digest('hex');
}

export function storeAttachment(ctx: Ctx, channelId: string, f: FileInput): AttachmentRec {
  const id = ctx.store.ids.next();
  const now = Date.now();
  const expiresAt = now + ATTACHMENT_URL_TTL_MS;
  const path = `/attachments/${channelId}/${id}/${encodeURIComponent(f.filename)}`;
  const ex = Math.floor(expiresAt / 1000).toString(16);
  const is = Math.floor(now / 1000).toString(16);
  const rec: AttachmentRec = {
    id,
    filename: f.filename,
    size: f.data.length,
    url: `${ctx.baseUrl}${path}?ex=${ex}&is=${is}&hm=${attachmentSignature(path, ex, is)}&`,
    data: f.data,
    expiresAt,
  };
  if (f.contentType !== undefined) rec.contentType = f.contentType;
  if (f.serve !== undefined) rec.serve = f.serve;
  ctx.store.attachments.set(id, rec);
  return rec;
}

function mentionsFor(ctx: Ctx, m: MessageRec): { parsed: Pinged; pinged: Pinged } {
  const { store } = ctx;
  const guildId = store.guildIdOf(m.channelId);
  const parsed = parseMentions(
    mentionableText(m),
    (id) => store.users.has(id),
    (id) => store.roles.get(id)?.guildId === guildId && id !== guildId,
  );
  const ref = m.referenceId !== undefined ? store.messages.get(m.referenceId) : undefined;
  const repliedUserId = ref && ref.authorId !== m.authorId ? ref.authorId : undefined;
  const pinged = computePinged(parsed, m.allowedMentions, {
    canMentionEveryone: has(store.permissionsOf(m.authorId, guildId), P.MENTION_EVERYONE),
    repliedUserId,
  });
  return { parsed, pinged };
}

/** Reads allowed_mentions from a request body (undefined: absent, null: explicitly null). */
export function allowedMentionsOf(body: Obj): AllowedMentions | null | undefined {
  const am = body.allowed_mentions;
  if (am === undefined) return undefined;
  if (am === null) return null;
  return am as AllowedMentions;
}

/** A body's message fields, for create/edit/interaction responses. */
export function patchFromBody(body: Obj, files: FileInput[]): MessagePatch {
  const patch: MessagePatch = {};
  if ('content' in body) patch.content = typeof body.content === 'string' ? body.content : '';
  if ('embeds' in body) patch.embeds = Array.isArray(body.embeds) ? structuredClone(body.embeds) : [];
  if ('components' in body)
    patch.components = Array.isArray(body.components) ? structuredClone(body.components) : [];
  if (typeof body.flags === 'number') patch.flags = body.flags;
  const am = allowedMentionsOf(body);
  if (am !== undefined) patch.allowedMentions = am;
  if (Array.isArray(body.attachments)) {
    patch.keepAttachments = body.attachments.filter(isObj).map((a) => String(a.id));
  }
  if (files.length > 0) patch.files = files;
  return patch;
}

export function isEmptyPatch(p: MessagePatch, body: Obj): boolean {
  return (
    (p.content ?? '') === '' &&
    (p.embeds ?? []).length === 0 &&
    (p.components ?? []).length === 0 &&
    (p.files ?? []).length === 0 &&
    !(Array.isArray(body.sticker_ids) && body.sticker_ids.length > 0) &&
    !isObj(body.poll)
  );
}

/** Resolves a message_reference against the channel; undefined when absent or dropped. */
export function referenceOf(ctx: Ctx, body: Obj, channelId: string): string | undefined {
  const ref = body.message_reference;
  if (!isObj(ref) || typeof ref.message_id !== 'string') return undefined;
  const target = ctx.store.messages.get(ref.message_id);
  if (!target || target.deleted || target.channelId !== channelId || target.ephemeral) {
    if (ref.fail_if_not_exists === false) return undefined;
    throw formError(['message_reference'], 'MESSAGE_REFERENCE_UNKNOWN_MESSAGE', 'Unknown message');
  }
  return target.id;
}

/** Checks that `userId` may post in `ch`: 50013 without permission or in a locked thread, 50083 archived. */
export function assertCanSend(ctx: Ctx, ch: ChannelRec, userId: string): void {
  const perms = ctx.store.channelPermissionsOf(userId, ch.id);
  if (!has(perms, P.VIEW_CHANNEL)) throw Errors.missingAccess();
  if (isThread(ch)) {
    if (!has(perms, P.SEND_MESSAGES_IN_THREADS)) throw Errors.missingPermissions();
    if (ch.locked && !has(perms, P.MANAGE_THREADS)) throw Errors.missingPermissions();
    if (ch.archived) throw Errors.threadArchived();
  } else if (!has(perms, P.SEND_MESSAGES)) {
    throw Errors.missingPermissions();
  }
}

export function createMessage(ctx: Ctx, input: NewMessage): MessageRec {
  const { store } = ctx;
  const now = Date.now();
  const id = store.ids.next(now);
  const ephemeral = input.ephemeral ?? false;
  const m: MessageRec = {
    id,
    channelId: input.channelId,
    authorId: input.authorId,
    type: input.type ?? (input.referenceId !== undefined ? 19 : 0),
    content: input.content ?? '',
    embeds: input.embeds ?? [],
    components: input.components ?? [],
    attachments: (input.files ?? []).map((f) => storeAttachment(ctx, input.channelId, f)),
    flags: (input.flags ?? 0) | (ephemeral ? MessageFlags.EPHEMERAL : 0),
    tts: input.tts ?? false,
    ephemeral,
    parsed: { users: [], roles: [], everyone: false },
    pinged: { users: [], roles: [], everyone: false },
    editCount: 0,
    createdAt: now,
    deleted: false,
  };
  if (input.nonce !== undefined) m.nonce = input.nonce;
  if (input.visibleTo !== undefined) m.visibleTo = input.visibleTo;
  if (input.interactionId !== undefined) m.interactionId = input.interactionId;
  if (input.webhookId !== undefined) m.webhookId = input.webhookId;
  if (input.referenceId !== undefined) m.referenceId = input.referenceId;
  if (input.allowedMentions !== undefined) m.allowedMentions = input.allowedMentions;
  Object.assign(m, mentionsFor(ctx, m));
  store.messages.set(id, m);
  store.channelMessages.get(m.channelId)?.push(id);
  const ch = store.channels.get(m.channelId);
  if (ch && !ephemeral) {
    ch.lastMessageId = id;
    if (isThread(ch)) {
      ch.messageCount++;
      ch.totalMessageSent++;
      if (!ch.members.has(m.authorId)) ch.members.set(m.authorId, now);
    }
  }
  if (!ephemeral) dispatchMessage(ctx, 'MESSAGE_CREATE', m);
  store.changed();
  return m;
}

export function editMessage(ctx: Ctx, m: MessageRec, patch: MessagePatch): void {
  const next: MessageRec = { ...m, attachments: [...m.attachments] };
  if (patch.content !== undefined) next.content = patch.content;
  if (patch.embeds !== undefined) next.embeds = patch.embeds;
  if (patch.components !== undefined) next.components = patch.components;
  if (patch.flags !== undefined) {
    // Only SUPPRESS_EMBEDS and IS_COMPONENTS_V2 may change on edit; ephemeral/loading stay as they are.
    const mutable = (1 << 2) | MessageFlags.IS_COMPONENTS_V2;
    next.flags = (m.flags & ~mutable) | (patch.flags & mutable);
  }
  if (patch.allowedMentions !== undefined) next.allowedMentions = patch.allowedMentions;
  Object.assign(next, mentionsFor(ctx, next)); // may throw (invalid allowed_mentions) before anything changed
  if (patch.keepAttachments !== undefined) {
    const keep = new Set(patch.keepAttachments);
    next.attachments = next.attachments.filter((a) => keep.has(a.id));
  }
  for (const f of patch.files ?? []) next.attachments.push(storeAttachment(ctx, m.channelId, f));
  next.editCount = m.editCount + 1;
  next.editedAt = Date.now();
  Object.assign(m, next);
  if (!m.ephemeral) dispatchMessage(ctx, 'MESSAGE_UPDATE', m);
  ctx.store.changed();
}

export function deleteMessage(ctx: Ctx, m: MessageRec): void {
  m.deleted = true;
  const ch = ctx.store.channels.get(m.channelId);
  if (ch && isThread(ch) && !m.ephemeral) ch.messageCount = Math.max(0, ch.messageCount - 1);
  if (!m.ephemeral) {
    const guildId = ctx.store.guildIdOf(m.channelId);
    ctx.gateway.dispatch(
      'MESSAGE_DELETE',
      guildId,
      () => ({ id: m.id, channel_id: m.channelId, guild_id: guildId }),
      Intents.GUILD_MESSAGES,
    );
  }
  ctx.store.changed();
}

/** MESSAGE_CREATE/UPDATE payload for one session, honouring the Message Content intent. */
export function gatewayMessage(ctx: Ctx, m: MessageRec, session: Session): Json {
  const { store } = ctx;
  const guildId = store.guildIdOf(m.channelId);
  const out: Json = { ...store.messageJson(m), guild_id: guildId };
  if (m.webhookId === undefined) {
    const member = store.memberJson(m.authorId, false, guildId);
    if (member) out.member = member;
  }
  const privileged = (session.intents & Intents.MESSAGE_CONTENT) !== 0;
  const visible = privileged || m.authorId === store.botUserId || m.pinged.users.includes(store.botUserId);
  if (!visible) {
    out.content = '';
    out.embeds = [];
    out.attachments = [];
    out.components = [];
    delete out.poll;
  }
  return out;
}

function dispatchMessage(ctx: Ctx, t: 'MESSAGE_CREATE' | 'MESSAGE_UPDATE', m: MessageRec): void {
  const guildId = ctx.store.guildIdOf(m.channelId);
  ctx.gateway.dispatch(t, guildId, (s) => gatewayMessage(ctx, m, s), Intents.GUILD_MESSAGES);
}
