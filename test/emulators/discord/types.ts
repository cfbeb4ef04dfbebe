// Public types of the Discord emulator, and the internal records behind them.

export interface WindowLimit {
  limit: number;
  windowMs: number;
}

export interface DiscordEmulatorOptions {
  port?: number;
  rateLimits?: { messageEdit?: WindowLimit; messageCreate?: WindowLimit };
  /** Time an interaction may take to be acknowledged (default 3000 ms). */
  interactionAckMs?: number;
  /** Lifetime of an interaction token for webhook calls (default 15 min). */
  interactionTokenTtlMs?: number;
  /** Give the bot MANAGE_THREADS (default false, so a locked thread rejects it with 50013). */
  botManageThreads?: boolean;
  /** The shard count GET /gateway/bot recommends (default 1); the guild's events go to shard (guild_id >> 22) % n. */
  recommendedShards?: number;
  /**
   * Discord's identify limits, enforced when given: an IDENTIFY less than `intervalMs` (default 5000) after the last
   * one of its bucket (`shard_id % maxConcurrency`) gets INVALID_SESSION, and one past the day's `perDay` (default
   * 1000) is closed with 4004. Without it identifies are only counted (GET /gateway/bot's session_start_limit says
   * max_concurrency 1), so tests that log in many times in a row are not slowed.
   */
  identifyLimits?: { maxConcurrency?: number; perDay?: number; intervalMs?: number };
  /** Requests per second one bot token may make, across all its connections (default 50); 0: no global limit. */
  globalRequestsPerSecond?: number;
}

/** One IDENTIFY the gateway got, and what it answered. */
export interface IdentifyView {
  at: number;
  shard: [number, number];
  /** `shard_id % max_concurrency`. */
  bucket: number;
  /** ready; invalid_session: too early in its bucket; over_budget: past the day's identifies (closed 4004). */
  outcome: 'ready' | 'invalid_session' | 'over_budget';
}

/** A gateway session (one bot connection) as tests see it. */
export interface GatewaySessionView {
  id: string;
  /** [shard_id, num_shards] as sent in IDENTIFY. */
  shard: [number, number];
  connected: boolean;
  /** The guilds its shard covers. */
  guildIds: string[];
}

export interface Pinged {
  users: string[];
  roles: string[];
  everyone: boolean;
}

export interface AttachmentView {
  id: string;
  filename: string;
  url: string;
  size: number;
  contentType?: string;
}

export interface MessageView {
  id: string;
  channelId: string;
  authorId: string;
  content: string;
  /** What a reader sees as its text: content, embeds' titles and descriptions, text displays (components v2). */
  text: string;
  embeds: unknown[];
  components: unknown[];
  attachments: AttachmentView[];
  flags: number;
  /** Discord message type (0 default, 19 reply, 20 chat input command response). */
  type: number;
  ephemeral: boolean;
  /** The user who can see an ephemeral message. */
  visibleTo?: string;
  interactionId?: string;
  /** The message this one replies to (message_reference). */
  referenceId?: string;
  /** Who this message actually pings, given its content and allowed_mentions. */
  pinged: Pinged;
  editCount: number;
  createdAt: number;
  editedAt?: number;
}

export interface ChannelView {
  id: string;
  type: number;
  name: string;
  parentId: string | null;
  archived: boolean;
  locked: boolean;
  ownerId: string | null;
  memberIds: string[];
}

export interface RecordedRequest {
  method: string;
  /** Route template, e.g. 'PATCH /channels/:channel_id/messages/:message_id'. */
  route: string;
  /** Path below /api/v10, without the query string. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  at: number;
  /** Response headers (rate limit headers among them). */
  headers?: Record<string, string>;
}

export interface InteractionHandle {
  id: string;
  token: string;
  acked(): Promise<{ type: number }>;
  response(opts?: { timeoutMs?: number }): Promise<MessageView>;
  followups(): MessageView[];
  error(): { code: number; message: string } | undefined;
}

export interface FailureSpec {
  /** Route template as in RecordedRequest.route, e.g. 'POST /channels/:channel_id/messages'. */
  route: string;
  status: number;
  code?: number;
  message?: string;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** For status 429: the retry_after to announce (default 100 ms). */
  retryAfterMs?: number;
}

export type OptionValue = string | number | boolean;

export interface DiscordEmulator {
  apiUrl: string;
  botToken: string;
  applicationId: string;
  botUserId: string;
  guildId: string;
  channelId: string;
  /** Role holding MANAGE_THREADS, given to users created with manageThreads: true. */
  moderatorRoleId: string;
  /** A person, member of every guild (those made later too); `manageThreads`: Moderator in each. */
  createUser(u: { username: string; manageThreads?: boolean; roles?: string[]; bot?: boolean }): {
    id: string;
    username: string;
  };
  /**
   * Another guild the bot is in, with its own roles, owner and `general` text channel (`channelId`); every person is
   * a member. `shard: [id, count]`: its id lands on shard `id` of `count` ((guild_id >> 22) % count).
   */
  createGuild(g?: { name?: string; shard?: [number, number] }): { id: string; channelId: string };
  /** `guildId`: default, the default guild. */
  createRole(r: { name: string; permissions?: bigint; guildId?: string }): string;
  /** `guildId`: default, the default guild. */
  createTextChannel(name: string, guildId?: string): string;
  createThread(t: { parentId: string; name: string; ownerId: string }): string;
  /** `via`: deliver the MESSAGE_CREATE to this gateway session only (see gatewaySessions). */
  postMessage(
    channelId: string,
    userId: string,
    content: string,
    opts?: {
      /** `content`: text, or the file's bytes (an image, a PDF). */
      attachments?: {
        filename: string;
        content: string | Uint8Array;
        contentType?: string;
        /** How the attachment's URL answers downloads (a status other than 200, a delay): for failure tests. */
        serve?: AttachmentServe;
      }[];
      replyTo?: string;
      via?: string;
    },
  ): MessageView;
  /**
   * Time passes for attachment URLs: every URL handed out so far expires (404 from now on), as Discord's signed CDN
   * URLs do after about a day. Attachments posted later get fresh URLs.
   */
  expireAttachments(): void;
  /** `via`: deliver the INTERACTION_CREATE to this gateway session only. */
  runCommand(c: {
    channelId: string;
    userId: string;
    name: string;
    subcommand?: string;
    options?: Record<string, OptionValue>;
    via?: string;
  }): InteractionHandle;
  /**
   * A message context-menu command ("Apps" on a message): an APPLICATION_COMMAND of data.type 3 with `target_id`
   * and the message in `resolved.messages`, in the message's channel. The command must be registered with type 3.
   */
  runMessageCommand(c: {
    userId: string;
    name: string;
    targetMessageId: string;
    via?: string;
  }): InteractionHandle;
  /**
   * `stale`: the click of a client that still shows an older render (the button may be gone or disabled now).
   * `via`: deliver the INTERACTION_CREATE to this gateway session only.
   */
  /** A server admin's command permission override: the member may use the command whatever it requires. */
  allowCommand(name: string, userId: string): void;
  clickButton(c: {
    messageId: string;
    customId: string;
    userId: string;
    stale?: boolean;
    via?: string;
  }): InteractionHandle;
  autocomplete(c: {
    channelId: string;
    userId: string;
    name: string;
    subcommand?: string;
    options: Record<string, string | number>;
    focused: string;
  }): Promise<{ name: string; value: string | number }[]>;
  messages(channelId: string): MessageView[];
  message(id: string): MessageView | undefined;
  channel(id: string): ChannelView | undefined;
  threadsOf(parentId: string): ChannelView[];
  archiveThread(threadId: string, opts?: { locked?: boolean }): void;
  /** A moderator locks (or, with false, unlocks) a thread without archiving it. */
  lockThread(threadId: string, locked?: boolean): void;
  /** A moderator reopens an archived thread; a lock stays. */
  unarchiveThread(threadId: string): void;
  waitFor<T>(
    probe: () => T | undefined | null | false,
    opts?: { timeoutMs?: number; message?: string },
  ): Promise<T>;
  requests: RecordedRequest[];
  /** Every download of a message attachment (GET of its URL), in order. */
  attachmentDownloads: AttachmentDownload[];
  commands(guildId?: string): unknown[];
  injectFailure(f: FailureSpec): void;
  dropConnection(): void;
  /**
   * The bot's gateway sessions, in the order they identified. Without `via`, an event reaches every session of the
   * guild's shard (as Discord does when two processes log in as the same shard); with `via`, only that one.
   */
  gatewaySessions(): GatewaySessionView[];
  /** Every IDENTIFY so far, in order, with its outcome. */
  identifies(): IdentifyView[];
  clientConnected(): Promise<void>;
  close(): Promise<void>;
}

// ---- internal records ----

export interface UserRec {
  id: string;
  username: string;
  bot: boolean;
}

export interface RoleRec {
  id: string;
  guildId: string;
  name: string;
  permissions: bigint;
  position: number;
  managed: boolean;
  mentionable: boolean;
}

export interface GuildRec {
  /** Also the id of its @everyone role. */
  id: string;
  name: string;
  ownerId: string;
  moderatorRoleId: string;
  botRoleId: string;
  members: Map<string, MemberRec>;
}

export interface MemberRec {
  userId: string;
  roles: string[];
  joinedAt: number;
}

export interface ChannelRec {
  id: string;
  guildId: string;
  type: number;
  name: string;
  parentId: string | null;
  ownerId: string | null;
  topic: string | null;
  position: number;
  archived: boolean;
  locked: boolean;
  invitable: boolean;
  autoArchiveDuration: number;
  archiveTimestamp: number;
  createdAt: number;
  members: Map<string, number>;
  messageCount: number;
  totalMessageSent: number;
  lastMessageId: string | null;
  rateLimitPerUser: number;
}

/** How an attachment's URL answers: `status` (default 200, the file) after `delayMs` (default 0). */
export interface AttachmentServe {
  status?: number;
  delayMs?: number;
}

export interface AttachmentDownload {
  attachmentId: string;
  filename: string;
  status: number;
  at: number;
}

export interface AttachmentRec {
  serve?: AttachmentServe;
  id: string;
  filename: string;
  size: number;
  contentType?: string;
  url: string;
  data: Buffer;
  /** When the signed URL stops working (ms since the epoch); the URL's `ex` says the same in hex seconds. */
  expiresAt: number;
}

export interface AllowedMentions {
  parse?: string[] | null;
  users?: string[] | null;
  roles?: string[] | null;
  replied_user?: boolean | null;
}

export interface MessageRec {
  id: string;
  channelId: string;
  authorId: string;
  type: number;
  content: string;
  embeds: unknown[];
  components: unknown[];
  attachments: AttachmentRec[];
  flags: number;
  tts: boolean;
  nonce?: string | number;
  ephemeral: boolean;
  visibleTo?: string;
  interactionId?: string;
  webhookId?: string;
  referenceId?: string;
  allowedMentions?: AllowedMentions | null;
  /** Mentions as written in the content (before allowed_mentions). */
  parsed: Pinged;
  pinged: Pinged;
  editCount: number;
  createdAt: number;
  editedAt?: number;
  deleted: boolean;
  threadId?: string;
}

export interface InteractionRec {
  id: string;
  token: string;
  /** 2 application command, 3 component, 4 autocomplete. */
  type: number;
  channelId: string;
  userId: string;
  data: Record<string, unknown>;
  payload: Record<string, unknown>;
  createdAt: number;
  sourceMessageId?: string;
  ackType?: number;
  ackData?: Record<string, unknown>;
  originalMessageId?: string;
  responseMessageId?: string;
  /** The visible response is there (see InteractionHandle.response). */
  responded: boolean;
  /** Edits of @original seen after a type 6 ack. */
  followupIds: string[];
  error?: { code: number; message: string };
  expired: boolean;
}
