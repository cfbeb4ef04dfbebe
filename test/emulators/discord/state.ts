// The emulated guilds (the default one and any a test adds): users, roles, members, channels, messages,
// interactions, commands, and their Discord JSON shapes. Roles, members and channels belong to one guild; users,
// messages and interactions find theirs through their channel.
import { iso, Snowflakes } from './ids.ts';
import { ALL_PERMISSIONS, BOT_ROLE_PERMISSIONS, EVERYONE_PERMISSIONS, has, P } from './permissions.ts';
import { MessageFlags, visibleText } from './rules.ts';
import type {
  AttachmentRec,
  ChannelRec,
  ChannelView,
  GuildRec,
  InteractionRec,
  MemberRec,
  MessageRec,
  MessageView,
  RoleRec,
  UserRec,
} from './types.ts';

export type Json = Record<string, unknown>;

export const ChannelType = { GUILD_TEXT: 0, PUBLIC_THREAD: 11, PRIVATE_THREAD: 12 } as const;

export function isThread(c: ChannelRec): boolean {
  return c.type === ChannelType.PUBLIC_THREAD || c.type === ChannelType.PRIVATE_THREAD || c.type === 10;
}

export class Store {
  ids = new Snowflakes();
  /** The default guild (the one every test has); `guilds` holds it and any other. */
  guildId: string;
  guildName = 'threadfork test guild';
  ownerId: string;
  botUserId: string;
  applicationId: string;
  moderatorRoleId: string;
  botRoleId: string;
  users = new Map<string, UserRec>();
  guilds = new Map<string, GuildRec>();
  /** Every guild's roles, by id (each names its guild). */
  roles = new Map<string, RoleRec>();
  /** The default guild's members (the same map as its GuildRec's). */
  members: Map<string, MemberRec>;
  channels = new Map<string, ChannelRec>();
  messages = new Map<string, MessageRec>();
  channelMessages = new Map<string, string[]>();
  interactions = new Map<string, InteractionRec>();
  interactionsByToken = new Map<string, InteractionRec>();
  /** Application commands by scope: 'global' or a guild id. */
  commandScopes = new Map<string, Json[]>();
  attachments = new Map<string, AttachmentRec>();
  #listeners = new Set<() => void>();
  #botManageThreads: boolean;

  constructor(opts: { botManageThreads: boolean }) {
    this.#botManageThreads = opts.botManageThreads;
    this.guildId = this.ids.next();
    this.applicationId = this.ids.next();
    this.botUserId = this.ids.next();
    this.users.set(this.botUserId, { id: this.botUserId, username: 'threadfork', bot: true });
    this.ownerId = this.ids.next();
    this.users.set(this.ownerId, { id: this.ownerId, username: 'guild-owner', bot: false });
    const guild = this.addGuild(this.guildId, this.guildName, this.ownerId);
    this.moderatorRoleId = guild.moderatorRoleId;
    this.botRoleId = guild.botRoleId;
    this.members = guild.members;
  }

  /** A guild with its @everyone role (the guild's id), a Moderator role, the bot's role, the bot and the owner. */
  addGuild(id: string, name: string, ownerId: string): GuildRec {
    const now = Date.now();
    const members = new Map<string, MemberRec>();
    const guild: GuildRec = { id, name, ownerId, moderatorRoleId: '', botRoleId: '', members };
    this.guilds.set(id, guild);
    this.roles.set(id, {
      id,
      guildId: id,
      name: '@everyone',
      permissions: EVERYONE_PERMISSIONS,
      position: 0,
      managed: false,
      mentionable: false,
    });
    guild.moderatorRoleId = this.addRole('Moderator', P.MANAGE_THREADS, id);
    guild.botRoleId = this.ids.next();
    this.roles.set(guild.botRoleId, {
      id: guild.botRoleId,
      guildId: id,
      name: 'threadfork',
      permissions: BOT_ROLE_PERMISSIONS | (this.#botManageThreads ? P.MANAGE_THREADS : 0n),
      position: this.rolesOf(id).length,
      managed: true,
      mentionable: false,
    });
    members.set(this.botUserId, { userId: this.botUserId, roles: [guild.botRoleId], joinedAt: now });
    members.set(ownerId, { userId: ownerId, roles: [], joinedAt: now });
    return guild;
  }

  guild(id: string = this.guildId): GuildRec {
    const g = this.guilds.get(id);
    if (!g) throw new Error(`unknown guild ${id}`);
    return g;
  }

  /** The guild a channel (or thread) is in; the default guild for an unknown channel. */
  guildIdOf(channelId: string): string {
    return this.channels.get(channelId)?.guildId ?? this.guildId;
  }

  rolesOf(guildId: string): RoleRec[] {
    return [...this.roles.values()].filter((r) => r.guildId === guildId);
  }

  // ---- change notification (drives waitFor) ----

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  changed(): void {
    for (const fn of [...this.#listeners]) fn();
  }

  // ---- entities ----

  addRole(name: string, permissions: bigint, guildId: string = this.guildId): string {
    const id = this.ids.next();
    this.roles.set(id, {
      id,
      guildId,
      name,
      permissions,
      position: this.rolesOf(guildId).length,
      managed: false,
      mentionable: true,
    });
    return id;
  }

  addTextChannel(name: string, guildId: string = this.guildId): ChannelRec {
    const id = this.ids.next();
    const position = [...this.channels.values()].filter((c) => !isThread(c) && c.guildId === guildId).length;
    const rec = this.newChannel(id, ChannelType.GUILD_TEXT, name, null, null, guildId);
    rec.position = position;
    return rec;
  }

  newChannel(
    id: string,
    type: number,
    name: string,
    parentId: string | null,
    ownerId: string | null,
    guildId: string,
  ): ChannelRec {
    const now = Date.now();
    const rec: ChannelRec = {
      id,
      guildId,
      type,
      name,
      parentId,
      ownerId,
      topic: null,
      position: 0,
      archived: false,
      locked: false,
      invitable: true,
      autoArchiveDuration: 1440,
      archiveTimestamp: now,
      createdAt: now,
      members: new Map(),
      messageCount: 0,
      totalMessageSent: 0,
      lastMessageId: null,
      rateLimitPerUser: 0,
    };
    if (ownerId !== null) rec.members.set(ownerId, now);
    this.channels.set(id, rec);
    this.channelMessages.set(id, []);
    return rec;
  }

  /** Guild-level permissions of a member. */
  permissionsOf(userId: string, guildId: string = this.guildId): bigint {
    const guild = this.guilds.get(guildId);
    if (!guild) return 0n;
    if (userId === guild.ownerId) return ALL_PERMISSIONS;
    const member = guild.members.get(userId);
    let perms = this.roles.get(guildId)?.permissions ?? 0n;
    for (const roleId of member?.roles ?? []) perms |= this.roles.get(roleId)?.permissions ?? 0n;
    return has(perms, P.ADMINISTRATOR) ? ALL_PERMISSIONS : perms;
  }

  /** Permissions in a channel, in its guild (no overwrites are modelled, so equal to the guild-level ones). */
  channelPermissionsOf(userId: string, channelId: string): bigint {
    return this.permissionsOf(userId, this.guildIdOf(channelId));
  }

  canManageThreads(userId: string, guildId: string = this.guildId): boolean {
    return has(this.permissionsOf(userId, guildId), P.MANAGE_THREADS);
  }

  liveMessages(channelId: string): MessageRec[] {
    const ids = this.channelMessages.get(channelId) ?? [];
    const out: MessageRec[] = [];
    for (const id of ids) {
      const m = this.messages.get(id);
      if (m && !m.deleted) out.push(m);
    }
    return out;
  }

  commandsOf(scope: string): Json[] {
    let list = this.commandScopes.get(scope);
    if (!list) {
      list = [];
      this.commandScopes.set(scope, list);
    }
    return list;
  }

  // ---- Discord JSON ----

  userJson(id: string): Json {
    const u = this.users.get(id);
    const username = u?.username ?? 'unknown-user';
    return {
      id,
      username,
      discriminator: '0',
      global_name: u?.bot ? null : username,
      avatar: null,
      bot: u?.bot ?? false,
      system: false,
      public_flags: 0,
      flags: 0,
      banner: null,
      accent_color: null,
      avatar_decoration_data: null,
      primary_guild: null,
      collectibles: null,
    };
  }

  memberJson(userId: string, withUser: boolean, guildId: string = this.guildId): Json | undefined {
    const m = this.guilds.get(guildId)?.members.get(userId);
    if (!m) return undefined;
    const out: Json = {
      roles: [...m.roles],
      joined_at: iso(m.joinedAt),
      nick: null,
      avatar: null,
      banner: null,
      premium_since: null,
      deaf: false,
      mute: false,
      pending: false,
      flags: 0,
      communication_disabled_until: null,
    };
    if (withUser) out.user = this.userJson(userId);
    return out;
  }

  roleJson(r: RoleRec): Json {
    return {
      id: r.id,
      name: r.name,
      description: null,
      color: 0,
      colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
      hoist: false,
      icon: null,
      unicode_emoji: null,
      position: r.position,
      permissions: r.permissions.toString(),
      managed: r.managed,
      mentionable: r.mentionable,
      flags: 0,
      ...(r.managed ? { tags: { bot_id: this.botUserId } } : {}),
    };
  }

  channelJson(c: ChannelRec, viewerId: string = this.botUserId): Json {
    const base: Json = {
      id: c.id,
      type: c.type,
      guild_id: c.guildId,
      name: c.name,
      parent_id: c.parentId,
      last_message_id: c.lastMessageId,
      rate_limit_per_user: c.rateLimitPerUser,
      flags: 0,
    };
    if (!isThread(c)) {
      return { ...base, position: c.position, permission_overwrites: [], topic: c.topic, nsfw: false };
    }
    const thread: Json = {
      ...base,
      owner_id: c.ownerId,
      message_count: c.messageCount,
      total_message_sent: c.totalMessageSent,
      member_count: Math.min(c.members.size, 50),
      applied_tags: [],
      thread_metadata: {
        archived: c.archived,
        auto_archive_duration: c.autoArchiveDuration,
        archive_timestamp: iso(c.archiveTimestamp),
        locked: c.locked,
        create_timestamp: iso(c.createdAt),
        ...(c.type === ChannelType.PRIVATE_THREAD ? { invitable: c.invitable } : {}),
      },
    };
    const joined = c.members.get(viewerId);
    if (joined !== undefined) thread.member = this.threadMemberJson(c, viewerId, joined);
    return thread;
  }

  threadMemberJson(c: ChannelRec, userId: string, joinedAt: number): Json {
    return { id: c.id, user_id: userId, join_timestamp: iso(joinedAt), flags: 0 };
  }

  attachmentJson(a: AttachmentRec): Json {
    return {
      id: a.id,
      filename: a.filename,
      size: a.size,
      url: a.url,
      proxy_url: a.url,
      ...(a.contentType !== undefined ? { content_type: a.contentType } : {}),
    };
  }

  messageJson(m: MessageRec): Json {
    const author = this.userJson(m.authorId);
    const out: Json = {
      id: m.id,
      type: m.type,
      channel_id: m.channelId,
      author,
      content: m.content,
      timestamp: iso(m.createdAt),
      edited_timestamp: m.editedAt !== undefined ? iso(m.editedAt) : null,
      tts: m.tts,
      mention_everyone: m.pinged.everyone,
      mentions: m.pinged.users.map((id) => this.userJson(id)),
      mention_roles: [...m.pinged.roles],
      attachments: m.attachments.map((a) => this.attachmentJson(a)),
      embeds: structuredClone(m.embeds),
      components: structuredClone(m.components),
      pinned: false,
      flags: m.flags,
    };
    if (m.nonce !== undefined) out.nonce = m.nonce;
    if (m.webhookId !== undefined) {
      out.webhook_id = m.webhookId;
      out.application_id = this.applicationId;
    }
    if (m.referenceId !== undefined) {
      out.message_reference = {
        type: 0,
        message_id: m.referenceId,
        channel_id: m.channelId,
        guild_id: this.guildIdOf(m.channelId),
      };
      const ref = this.messages.get(m.referenceId);
      if (ref && !ref.deleted) {
        const { referenceId: _nested, ...flat } = ref;
        out.referenced_message = this.messageJson(flat);
      } else {
        out.referenced_message = null;
      }
    }
    if (m.interactionId !== undefined) {
      const i = this.interactions.get(m.interactionId);
      if (i) {
        out.interaction_metadata = {
          id: i.id,
          type: i.type,
          user: this.userJson(i.userId),
          authorizing_integration_owners: { '0': this.guildIdOf(i.channelId) },
          ...(i.type === 2 ? { name: String(i.data.name ?? '') } : {}),
          ...(i.originalMessageId !== undefined && i.originalMessageId !== m.id
            ? { original_response_message_id: i.originalMessageId }
            : {}),
          ...(i.sourceMessageId !== undefined ? { interacted_message_id: i.sourceMessageId } : {}),
        };
      }
    }
    if (m.threadId !== undefined) {
      const t = this.channels.get(m.threadId);
      if (t) out.thread = this.channelJson(t);
    }
    return out;
  }

  guildJson(guildId: string = this.guildId): Json {
    const guild = this.guild(guildId);
    return {
      id: guild.id,
      name: guild.name,
      icon: null,
      icon_hash: null,
      splash: null,
      discovery_splash: null,
      owner_id: guild.ownerId,
      region: 'us-west',
      afk_channel_id: null,
      afk_timeout: 300,
      widget_enabled: false,
      widget_channel_id: null,
      verification_level: 0,
      default_message_notifications: 1,
      explicit_content_filter: 0,
      roles: this.rolesOf(guild.id).map((r) => this.roleJson(r)),
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      max_presences: null,
      max_members: 500000,
      vanity_url_code: null,
      description: null,
      banner: null,
      premium_tier: 0,
      premium_subscription_count: 0,
      preferred_locale: 'en-US',
      public_updates_channel_id: null,
      max_video_channel_users: 25,
      max_stage_video_channel_users: 50,
      nsfw_level: 0,
      premium_progress_bar_enabled: false,
      safety_alerts_channel_id: null,
      incidents_data: null,
    };
  }

  guildCreateJson(guildId: string = this.guildId): Json {
    const guild = this.guild(guildId);
    const channels = [...this.channels.values()].filter((c) => c.guildId === guild.id);
    return {
      ...this.guildJson(guild.id),
      joined_at: iso(guild.members.get(this.botUserId)?.joinedAt ?? Date.now()),
      large: false,
      unavailable: false,
      member_count: guild.members.size,
      voice_states: [],
      members: [this.memberJson(this.botUserId, true, guild.id)],
      channels: channels.filter((c) => !isThread(c)).map((c) => this.channelJson(c)),
      threads: channels.filter((c) => isThread(c) && !c.archived).map((c) => this.channelJson(c)),
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  // ---- driver views ----

  messageView(m: MessageRec): MessageView {
    const view: MessageView = {
      id: m.id,
      channelId: m.channelId,
      authorId: m.authorId,
      content: m.content,
      text: visibleText(m),
      embeds: structuredClone(m.embeds),
      components: structuredClone(m.components),
      attachments: m.attachments.map((a) => ({
        id: a.id,
        filename: a.filename,
        url: a.url,
        size: a.size,
        ...(a.contentType !== undefined ? { contentType: a.contentType } : {}),
      })),
      flags: m.flags,
      type: m.type,
      ephemeral: m.ephemeral,
      pinged: { users: [...m.pinged.users], roles: [...m.pinged.roles], everyone: m.pinged.everyone },
      editCount: m.editCount,
      createdAt: m.createdAt,
    };
    if (m.visibleTo !== undefined) view.visibleTo = m.visibleTo;
    if (m.interactionId !== undefined) view.interactionId = m.interactionId;
    if (m.referenceId !== undefined) view.referenceId = m.referenceId;
    if (m.editedAt !== undefined) view.editedAt = m.editedAt;
    return view;
  }

  channelView(c: ChannelRec): ChannelView {
    return {
      id: c.id,
      type: c.type,
      name: c.name,
      parentId: c.parentId,
      archived: c.archived,
      locked: c.locked,
      ownerId: c.ownerId,
      memberIds: [...c.members.keys()],
    };
  }
}

export function isLoading(m: MessageRec): boolean {
  return (m.flags & MessageFlags.LOADING) !== 0;
}
