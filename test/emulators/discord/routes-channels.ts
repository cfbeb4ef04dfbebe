// Channel, message and thread routes.
import type { Ctx } from './context.ts';
import { Errors, formError } from './errors.ts';
import { Intents } from './gateway.ts';
import {
  assertCanSend,
  createMessage,
  deleteMessage,
  editMessage,
  isEmptyPatch,
  patchFromBody,
  referenceOf,
} from './messages.ts';
import { has, P } from './permissions.ts';
import type { BucketSpec } from './ratelimit.ts';
import { hashOf, type RouteDef, route } from './router.ts';
import { checkMessageLimits, MessageFlags } from './rules.ts';
import { ChannelType, isThread, type Json } from './state.ts';
import type { ChannelRec, MessageRec } from './types.ts';

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});

export function channelOr404(ctx: Ctx, id: string | undefined): ChannelRec {
  const ch = id !== undefined ? ctx.store.channels.get(id) : undefined;
  if (!ch) throw Errors.unknownChannel();
  if (!has(ctx.store.channelPermissionsOf(ctx.store.botUserId, ch.id), P.VIEW_CHANNEL))
    throw Errors.missingAccess();
  return ch;
}

function messageOr404(ctx: Ctx, ch: ChannelRec, id: string | undefined): MessageRec {
  const m = id !== undefined ? ctx.store.messages.get(id) : undefined;
  if (!m || m.deleted || m.channelId !== ch.id || m.ephemeral) throw Errors.unknownMessage();
  return m;
}

const CREATE_HASH = hashOf('POST /channels/:channel_id/messages');
const EDIT_HASH = hashOf('PATCH /channels/:channel_id/messages/:message_id');

export const messageCreateBucket = (p: Record<string, string>, ctx: Ctx): BucketSpec => ({
  key: `create:${p.channel_id}`,
  hash: CREATE_HASH,
  ...ctx.config.messageCreate,
});

export const messageEditBucket = (p: Record<string, string>, ctx: Ctx): BucketSpec => ({
  key: `edit:${p.channel_id}`,
  hash: EDIT_HASH,
  ...ctx.config.messageEdit,
});

/** Archived threads refuse changes (50083); locked ones refuse non-moderators (50013). */
function assertThreadWritable(ctx: Ctx, ch: ChannelRec): void {
  if (!isThread(ch)) return;
  if (ch.locked && !ctx.store.canManageThreads(ctx.store.botUserId, ch.guildId))
    throw Errors.missingPermissions();
  if (ch.archived) throw Errors.threadArchived();
}

function dispatchThread(
  ctx: Ctx,
  t: 'THREAD_CREATE' | 'THREAD_UPDATE',
  ch: ChannelRec,
  extra: Json = {},
): void {
  ctx.gateway.dispatch(t, ch.guildId, () => ({ ...ctx.store.channelJson(ch), ...extra }), Intents.GUILDS);
}

export function newThread(
  ctx: Ctx,
  opts: { id?: string; parent: ChannelRec; name: string; ownerId: string; type: number; body?: Obj },
): ChannelRec {
  const { store } = ctx;
  const id = opts.id ?? store.ids.next();
  const th = store.newChannel(id, opts.type, opts.name, opts.parent.id, opts.ownerId, opts.parent.guildId);
  const b = opts.body ?? {};
  if (typeof b.auto_archive_duration === 'number') th.autoArchiveDuration = b.auto_archive_duration;
  if (typeof b.rate_limit_per_user === 'number') th.rateLimitPerUser = b.rate_limit_per_user;
  if (typeof b.invitable === 'boolean') th.invitable = b.invitable;
  dispatchThread(ctx, 'THREAD_CREATE', th, { newly_created: true });
  store.changed();
  return th;
}

function assertCanCreateThread(ctx: Ctx, parent: ChannelRec, type: number): void {
  if (parent.type !== ChannelType.GUILD_TEXT) throw Errors.wrongChannelType();
  const perms = ctx.store.channelPermissionsOf(ctx.store.botUserId, parent.id);
  const needed = type === ChannelType.PRIVATE_THREAD ? P.CREATE_PRIVATE_THREADS : P.CREATE_PUBLIC_THREADS;
  if (!has(perms, needed)) throw Errors.missingPermissions();
}

export function setArchived(ctx: Ctx, th: ChannelRec, archived: boolean, locked?: boolean): void {
  if (th.archived !== archived) th.archiveTimestamp = Date.now();
  th.archived = archived;
  if (locked !== undefined) th.locked = locked;
  dispatchThread(ctx, 'THREAD_UPDATE', th);
  ctx.store.changed();
}

function patchChannel(ctx: Ctx, ch: ChannelRec, b: Obj): void {
  const { store } = ctx;
  const bot = store.botUserId;
  if (!isThread(ch)) {
    if (!has(store.channelPermissionsOf(bot, ch.id), P.MANAGE_CHANNELS)) throw Errors.missingPermissions();
    if (typeof b.name === 'string') ch.name = b.name;
    if ('topic' in b) ch.topic = typeof b.topic === 'string' ? b.topic : null;
    ctx.gateway.dispatch('CHANNEL_UPDATE', ch.guildId, () => store.channelJson(ch), Intents.GUILDS);
    store.changed();
    return;
  }
  const mod = store.canManageThreads(bot, ch.guildId);
  const owner = ch.ownerId === bot;
  if (typeof b.locked === 'boolean' && b.locked !== ch.locked && !mod) throw Errors.missingPermissions();
  if (b.archived === false && ch.archived && ch.locked && !mod) throw Errors.missingPermissions();
  if (b.archived === true && !ch.archived && !mod && !owner) throw Errors.missingPermissions();
  if (typeof b.name === 'string' && b.name !== ch.name && !mod && !owner) throw Errors.missingPermissions();
  const unarchiving = b.archived === false;
  const otherChanges = ['name', 'auto_archive_duration', 'rate_limit_per_user', 'invitable', 'locked'].some(
    (k) => k in b,
  );
  if (ch.archived && !unarchiving && otherChanges && b.archived !== true) throw Errors.threadArchived();
  if (typeof b.name === 'string') {
    if (b.name.length < 1)
      throw formError(['name'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
    ch.name = b.name;
  }
  if (typeof b.auto_archive_duration === 'number') ch.autoArchiveDuration = b.auto_archive_duration;
  if (typeof b.rate_limit_per_user === 'number') ch.rateLimitPerUser = b.rate_limit_per_user;
  if (typeof b.invitable === 'boolean') ch.invitable = b.invitable;
  const locked = typeof b.locked === 'boolean' ? b.locked : undefined;
  setArchived(ctx, ch, typeof b.archived === 'boolean' ? b.archived : ch.archived, locked);
}

function listMessages(ctx: Ctx, ch: ChannelRec, q: URLSearchParams): Json[] {
  const limitRaw = q.get('limit');
  const limit = limitRaw === null ? 50 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw formError(['limit'], 'NUMBER_TYPE_MAX', 'int value should be less than or equal to 100.');
  }
  const all = ctx.store.liveMessages(ch.id).filter((m) => !m.ephemeral);
  const before = q.get('before');
  const after = q.get('after');
  const around = q.get('around');
  let picked: MessageRec[];
  if (after !== null) {
    picked = all.filter((m) => BigInt(m.id) > BigInt(after)).slice(0, limit);
  } else if (around !== null) {
    const idx = all.findIndex((m) => BigInt(m.id) >= BigInt(around));
    const start = Math.max(0, (idx < 0 ? all.length : idx) - Math.floor(limit / 2));
    picked = all.slice(start, start + limit);
  } else {
    const older = before !== null ? all.filter((m) => BigInt(m.id) < BigInt(before)) : all;
    picked = older.slice(Math.max(0, older.length - limit));
  }
  return picked.reverse().map((m) => ctx.store.messageJson(m));
}

export const channelRoutes: RouteDef[] = [
  route('GET', '/channels/:channel_id', {
    auth: 'bot',
    handle: ({ ctx, params }) => ({
      status: 200,
      body: ctx.store.channelJson(channelOr404(ctx, params.channel_id)),
    }),
  }),
  route('PATCH', '/channels/:channel_id', {
    auth: 'bot',
    schema: 'UpdateChannel',
    handle: ({ ctx, params, body }) => {
      const ch = channelOr404(ctx, params.channel_id);
      patchChannel(ctx, ch, obj(body));
      return { status: 200, body: ctx.store.channelJson(ch) };
    },
  }),
  route('GET', '/channels/:channel_id/messages', {
    auth: 'bot',
    handle: ({ ctx, params, query }) => {
      const ch = channelOr404(ctx, params.channel_id);
      if (!has(ctx.store.channelPermissionsOf(ctx.store.botUserId, ch.id), P.READ_MESSAGE_HISTORY)) {
        return { status: 200, body: [] };
      }
      return { status: 200, body: listMessages(ctx, ch, query) };
    },
  }),
  route('POST', '/channels/:channel_id/messages', {
    auth: 'bot',
    schema: 'MessageCreateRequest',
    bucket: messageCreateBucket,
    handle: ({ ctx, params, body, files }) => {
      const ch = channelOr404(ctx, params.channel_id);
      const b = obj(body);
      assertCanSend(ctx, ch, ctx.store.botUserId);
      checkMessageLimits(b);
      const patch = patchFromBody(b, files);
      if (isEmptyPatch(patch, b)) throw Errors.emptyMessage();
      const referenceId = referenceOf(ctx, b, ch.id);
      const m = createMessage(ctx, {
        channelId: ch.id,
        authorId: ctx.store.botUserId,
        ...(patch.content !== undefined ? { content: patch.content } : {}),
        ...(patch.embeds !== undefined ? { embeds: patch.embeds } : {}),
        ...(patch.components !== undefined ? { components: patch.components } : {}),
        ...(patch.files !== undefined ? { files: patch.files } : {}),
        ...(patch.allowedMentions !== undefined ? { allowedMentions: patch.allowedMentions } : {}),
        ...(referenceId !== undefined ? { referenceId } : {}),
        flags:
          (patch.flags ?? 0) &
          (MessageFlags.SUPPRESS_NOTIFICATIONS | MessageFlags.IS_COMPONENTS_V2 | (1 << 2)),
        tts: b.tts === true,
        ...(typeof b.nonce === 'string' || typeof b.nonce === 'number' ? { nonce: b.nonce } : {}),
      });
      return { status: 200, body: ctx.store.messageJson(m) };
    },
  }),
  route('GET', '/channels/:channel_id/messages/:message_id', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const ch = channelOr404(ctx, params.channel_id);
      return { status: 200, body: ctx.store.messageJson(messageOr404(ctx, ch, params.message_id)) };
    },
  }),
  route('PATCH', '/channels/:channel_id/messages/:message_id', {
    auth: 'bot',
    schema: 'MessageEditRequestPartial',
    bucket: messageEditBucket,
    handle: ({ ctx, params, body, files }) => {
      const ch = channelOr404(ctx, params.channel_id);
      const m = messageOr404(ctx, ch, params.message_id);
      const b = obj(body);
      if (m.authorId !== ctx.store.botUserId) throw Errors.editOthersMessage();
      assertThreadWritable(ctx, ch);
      checkMessageLimits(b, m.flags);
      const patch = patchFromBody(b, files);
      const kept =
        patch.keepAttachments === undefined
          ? m.attachments.length
          : m.attachments.filter((a) => patch.keepAttachments?.includes(a.id)).length;
      const empty =
        (patch.content ?? m.content) === '' &&
        (patch.embeds ?? m.embeds).length === 0 &&
        (patch.components ?? m.components).length === 0 &&
        kept + (patch.files?.length ?? 0) === 0;
      if (empty) throw Errors.emptyMessage();
      editMessage(ctx, m, patch);
      return { status: 200, body: ctx.store.messageJson(m) };
    },
  }),
  route('DELETE', '/channels/:channel_id/messages/:message_id', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const ch = channelOr404(ctx, params.channel_id);
      const m = messageOr404(ctx, ch, params.message_id);
      const bot = ctx.store.botUserId;
      if (m.authorId !== bot && !has(ctx.store.channelPermissionsOf(bot, ch.id), P.MANAGE_MESSAGES)) {
        throw Errors.missingPermissions();
      }
      assertThreadWritable(ctx, ch);
      deleteMessage(ctx, m);
      return { status: 204 };
    },
  }),
  route('POST', '/channels/:channel_id/typing', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      channelOr404(ctx, params.channel_id);
      return { status: 204 };
    },
  }),
  route('POST', '/channels/:channel_id/messages/:message_id/threads', {
    auth: 'bot',
    schema: 'CreateTextThreadWithMessageRequest',
    handle: ({ ctx, params, body }) => {
      const parent = channelOr404(ctx, params.channel_id);
      const m = messageOr404(ctx, parent, params.message_id);
      assertCanCreateThread(ctx, parent, ChannelType.PUBLIC_THREAD);
      if (m.threadId !== undefined) throw Errors.threadAlreadyCreated();
      const b = obj(body);
      const th = newThread(ctx, {
        id: m.id,
        parent,
        name: String(b.name),
        ownerId: ctx.store.botUserId,
        type: ChannelType.PUBLIC_THREAD,
        body: b,
      });
      m.threadId = th.id;
      m.flags |= MessageFlags.HAS_THREAD;
      return { status: 201, body: ctx.store.channelJson(th) };
    },
  }),
  route('POST', '/channels/:channel_id/threads', {
    auth: 'bot',
    schema: 'CreateTextThreadWithoutMessageRequest',
    handle: ({ ctx, params, body }) => {
      const parent = channelOr404(ctx, params.channel_id);
      const b = obj(body);
      // API v10 documents `type` as required; like Discord, default to a private thread when it is absent.
      const type = typeof b.type === 'number' ? b.type : ChannelType.PRIVATE_THREAD;
      if (type !== ChannelType.PUBLIC_THREAD && type !== ChannelType.PRIVATE_THREAD) {
        throw formError(['type'], 'BASE_TYPE_CHOICES', 'Value must be one of {11, 12}.');
      }
      assertCanCreateThread(ctx, parent, type);
      const th = newThread(ctx, {
        parent,
        name: String(b.name),
        ownerId: ctx.store.botUserId,
        type,
        body: b,
      });
      return { status: 201, body: ctx.store.channelJson(th) };
    },
  }),
  route('PUT', '/channels/:channel_id/thread-members/@me', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const th = channelOr404(ctx, params.channel_id);
      if (!isThread(th)) throw Errors.wrongChannelType();
      if (th.archived) throw Errors.threadArchived();
      const bot = ctx.store.botUserId;
      if (!th.members.has(bot)) {
        const at = Date.now();
        th.members.set(bot, at);
        ctx.gateway.dispatch(
          'THREAD_MEMBER_UPDATE',
          th.guildId,
          () => ({ ...ctx.store.threadMemberJson(th, bot, at), guild_id: th.guildId }),
          Intents.GUILDS,
        );
        ctx.store.changed();
      }
      return { status: 204 };
    },
  }),
  route('DELETE', '/channels/:channel_id/thread-members/@me', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const th = channelOr404(ctx, params.channel_id);
      if (!isThread(th)) throw Errors.wrongChannelType();
      th.members.delete(ctx.store.botUserId);
      ctx.store.changed();
      return { status: 204 };
    },
  }),
  route('GET', '/channels/:channel_id/thread-members', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const th = channelOr404(ctx, params.channel_id);
      if (!isThread(th)) throw Errors.wrongChannelType();
      return {
        status: 200,
        body: [...th.members].map(([userId, at]) => ctx.store.threadMemberJson(th, userId, at)),
      };
    },
  }),
];
