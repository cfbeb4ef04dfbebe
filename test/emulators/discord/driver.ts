// The test driver: people acting in the guilds, and ways to observe and wait on the emulator's state.
import type { Ctx } from './context.ts';
import { Intents, shardOf } from './gateway.ts';
import { createInteraction, InteractionType } from './interactions.ts';
import { createMessage, type FileInput } from './messages.ts';
import { has } from './permissions.ts';
import type { RestServer } from './rest.ts';
import { newThread, setArchived } from './routes-channels.ts';
import { findComponent } from './rules.ts';
import { ChannelType, isThread, type Json } from './state.ts';
import type {
  AttachmentServe,
  ChannelRec,
  ChannelView,
  InteractionHandle,
  InteractionRec,
  MessageView,
  OptionValue,
  RecordedRequest,
} from './types.ts';

interface OptionDef {
  type: number;
  name: string;
  required?: boolean;
  options?: OptionDef[];
}

interface WaitOpts {
  timeoutMs?: number | undefined;
  message?: string | undefined;
  /** Checked on every change: a string rejects at once with that reason. */
  fail?: () => string | undefined;
}

const OptionType = {
  SUB_COMMAND: 1,
  SUB_COMMAND_GROUP: 2,
  STRING: 3,
  INTEGER: 4,
  BOOLEAN: 5,
  USER: 6,
  CHANNEL: 7,
  ROLE: 8,
  MENTIONABLE: 9,
  NUMBER: 10,
} as const;

const POLL_MS = 20;

function describe(r: RecordedRequest): string {
  return `${r.route} -> ${r.status}`;
}

export class Driver {
  #ctx: Ctx;
  #rest: RestServer;

  constructor(ctx: Ctx, rest: RestServer) {
    this.#ctx = ctx;
    this.#rest = rest;
  }

  // ---- waiting ----

  waitFor<T>(probe: () => T | undefined | null | false, opts: WaitOpts = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const store = this.#ctx.store;
    return new Promise<T>((resolve, reject) => {
      let lastError: unknown;
      let done = false;
      let unsubscribe = (): void => {};
      let timer: ReturnType<typeof setTimeout> | undefined;
      let poll: ReturnType<typeof setInterval> | undefined;
      const finish = (): void => {
        done = true;
        unsubscribe();
        if (timer) clearTimeout(timer);
        if (poll) clearInterval(poll);
      };
      const check = (): void => {
        if (done) return;
        const reason = opts.fail?.();
        if (reason !== undefined) {
          finish();
          reject(new Error(reason));
          return;
        }
        let value: T | undefined | null | false;
        try {
          value = probe();
        } catch (err) {
          lastError = err;
          return;
        }
        if (value !== undefined && value !== null && value !== false) {
          finish();
          resolve(value);
        }
      };
      check();
      if (done) return;
      unsubscribe = store.onChange(check);
      // Probes may also read state outside the emulator (the client's caches): look again now and then.
      poll = setInterval(check, POLL_MS);
      timer = setTimeout(() => {
        if (done) return;
        finish();
        const recent = this.#rest.requests.slice(-8).map(describe);
        const lines = [
          `waitFor timed out after ${timeoutMs} ms: ${opts.message ?? 'condition not met'}`,
          `last requests: ${recent.length > 0 ? `\n  ${recent.join('\n  ')}` : '(none)'}`,
        ];
        if (lastError !== undefined) lines.push(`last probe error: ${String(lastError)}`);
        reject(new Error(lines.join('\n')));
      }, timeoutMs);
    });
  }

  clientConnected(): Promise<void> {
    return this.waitFor(() => this.#ctx.gateway.connected(), {
      message: 'a client identified and got READY',
      timeoutMs: 30_000,
    }).then(() => undefined);
  }

  // ---- people, roles, channels ----

  /**
   * A person, member of every guild (those made later too): `manageThreads` gives each guild's Moderator role, and
   * each of `roles` goes to the member of the role's own guild.
   */
  createUser(u: { username: string; manageThreads?: boolean; roles?: string[]; bot?: boolean }): {
    id: string;
    username: string;
  } {
    const { store } = this.#ctx;
    const roles = [...(u.roles ?? [])];
    for (const r of roles) if (!store.roles.has(r)) throw new Error(`createUser: unknown role ${r}`);
    const id = store.ids.next();
    store.users.set(id, { id, username: u.username, bot: u.bot ?? false });
    for (const guild of store.guilds.values()) {
      const own = roles.filter((r) => store.roles.get(r)?.guildId === guild.id);
      this.#join(guild.id, id, u.manageThreads ? [...own, guild.moderatorRoleId] : own);
    }
    return { id, username: u.username };
  }

  #join(guildId: string, userId: string, roles: string[]): void {
    const { store, gateway } = this.#ctx;
    store.guild(guildId).members.set(userId, { userId, roles, joinedAt: Date.now() });
    gateway.dispatch(
      'GUILD_MEMBER_ADD',
      guildId,
      () => ({ ...store.memberJson(userId, true, guildId), guild_id: guildId }),
      Intents.GUILD_MEMBERS,
    );
  }

  /**
   * Another guild the bot is in (as when it is added to a server): its own @everyone and Moderator roles, the bot's
   * role, an owner, a `general` text channel, and every person made so far as a member (a moderator of the default
   * guild moderates this one too). `shard: [id, count]` picks an id that lands on that shard of `count`.
   */
  createGuild(g: { name?: string; shard?: [number, number] } = {}): { id: string; channelId: string } {
    const { store, gateway } = this.#ctx;
    const id = this.#guildId(g.shard);
    const ownerId = store.ids.next();
    store.users.set(ownerId, { id: ownerId, username: 'guild-owner', bot: false });
    const guild = store.addGuild(id, g.name ?? `guild ${store.guilds.size + 1}`, ownerId);
    const general = store.addTextChannel('general', id);
    gateway.guildAdded(id);
    const home = store.guild();
    for (const [userId, member] of home.members) {
      if (userId === store.botUserId || userId === home.ownerId || guild.members.has(userId)) continue;
      this.#join(id, userId, member.roles.includes(home.moderatorRoleId) ? [guild.moderatorRoleId] : []);
    }
    return { id, channelId: general.id };
  }

  /** A fresh snowflake; with `shard`, one whose timestamp (id >> 22) falls on that shard, as Discord routes it. */
  #guildId(shard: [number, number] | undefined): string {
    const { ids } = this.#ctx.store;
    if (!shard) return ids.next();
    const [want, count] = shard;
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(want) || want < 0 || want >= count)
      throw new Error(`createGuild: impossible shard ${JSON.stringify(shard)}`);
    // Snowflakes never go back in time, so step the timestamp forward until it lands (within count + a few ms).
    for (let ahead = 0; ; ahead += 1) {
      const id = ids.next(Date.now() + ahead);
      if (shardOf(id, count) === want) return id;
    }
  }

  createRole(r: { name: string; permissions?: bigint; guildId?: string }): string {
    const { store, gateway } = this.#ctx;
    const guildId = store.guild(r.guildId).id;
    const id = store.addRole(r.name, r.permissions ?? 0n, guildId);
    const role = store.roles.get(id);
    if (role) {
      gateway.dispatch(
        'GUILD_ROLE_CREATE',
        guildId,
        () => ({ guild_id: guildId, role: store.roleJson(role) }),
        Intents.GUILDS,
      );
    }
    return id;
  }

  createTextChannel(name: string, guildId?: string): string {
    const { store, gateway } = this.#ctx;
    const ch = store.addTextChannel(name, store.guild(guildId).id);
    gateway.dispatch('CHANNEL_CREATE', ch.guildId, () => store.channelJson(ch), Intents.GUILDS);
    return ch.id;
  }

  createThread(t: { parentId: string; name: string; ownerId: string }): string {
    const { store } = this.#ctx;
    const parent = store.channels.get(t.parentId);
    if (!parent || parent.type !== ChannelType.GUILD_TEXT)
      throw new Error(`createThread: ${t.parentId} is no text channel`);
    this.#user(t.ownerId);
    return newThread(this.#ctx, { parent, name: t.name, ownerId: t.ownerId, type: ChannelType.PUBLIC_THREAD })
      .id;
  }

  archiveThread(threadId: string, opts: { locked?: boolean } = {}): void {
    const th = this.#thread('archiveThread', threadId);
    setArchived(this.#ctx, th, true, opts.locked ?? th.locked);
  }

  /**
   * A moderator's "Lock Thread" (or unlock with `locked: false`): the thread stays open, but only members who can
   * manage threads may post in it (the bot too, unless it has MANAGE_THREADS).
   */
  lockThread(threadId: string, locked = true): void {
    const th = this.#thread('lockThread', threadId);
    setArchived(this.#ctx, th, th.archived, locked);
  }

  /** A moderator reopens an archived thread; a lock stays as it is. */
  unarchiveThread(threadId: string): void {
    setArchived(this.#ctx, this.#thread('unarchiveThread', threadId), false);
  }

  #thread(what: string, threadId: string): ChannelRec {
    const th = this.#ctx.store.channels.get(threadId);
    if (!th || !isThread(th)) throw new Error(`${what}: ${threadId} is no thread`);
    return th;
  }

  #user(id: string): void {
    if (!this.#ctx.store.users.has(id)) throw new Error(`unknown user ${id}`);
  }

  // ---- people acting ----

  expireAttachments(): void {
    for (const a of this.#ctx.store.attachments.values()) a.expiresAt = 0;
  }

  postMessage(
    channelId: string,
    userId: string,
    content: string,
    opts: {
      attachments?: {
        filename: string;
        content: string | Uint8Array;
        contentType?: string;
        /** How the attachment's URL answers downloads (a status other than 200, a delay): for failure tests. */
        serve?: AttachmentServe;
      }[];
      replyTo?: string;
      via?: string;
    } = {},
  ): MessageView {
    const { store } = this.#ctx;
    const ch = store.channels.get(channelId);
    if (!ch) throw new Error(`postMessage: unknown channel ${channelId}`);
    this.#user(userId);
    if (isThread(ch)) {
      if (ch.locked && !store.canManageThreads(userId, ch.guildId))
        throw new Error(`postMessage: thread ${ch.id} is locked`);
      // A person posting in an archived (unlocked) thread unarchives it, as in Discord.
      if (ch.archived) setArchived(this.#ctx, ch, false);
    }
    const files: FileInput[] = (opts.attachments ?? []).map((a) => ({
      filename: a.filename,
      data: typeof a.content === 'string' ? Buffer.from(a.content) : Buffer.from(a.content),
      ...(a.contentType !== undefined ? { contentType: a.contentType } : {}),
      ...(a.serve !== undefined ? { serve: a.serve } : {}),
    }));
    const m = this.#ctx.gateway.deliverVia(opts.via, ch.guildId, () =>
      createMessage(this.#ctx, {
        channelId,
        authorId: userId,
        content,
        files,
        ...(opts.replyTo !== undefined ? { referenceId: opts.replyTo } : {}),
      }),
    );
    return store.messageView(m);
  }

  runCommand(c: {
    channelId: string;
    userId: string;
    name: string;
    subcommand?: string;
    options?: Record<string, OptionValue>;
    via?: string;
  }): InteractionHandle {
    const guildId = this.#guildOf(c.channelId);
    const data = this.#commandData(guildId, c.name, c.userId, c.subcommand, c.options ?? {}, undefined);
    const rec = this.#ctx.gateway.deliverVia(c.via, guildId, () =>
      this.#interact(InteractionType.APPLICATION_COMMAND, c.channelId, c.userId, data),
    );
    return this.#handle(rec);
  }

  runMessageCommand(c: {
    userId: string;
    name: string;
    targetMessageId: string;
    via?: string;
  }): InteractionHandle {
    const { store } = this.#ctx;
    const m = store.messages.get(c.targetMessageId);
    if (!m || m.deleted || m.ephemeral)
      throw new Error(`runMessageCommand: unknown message ${c.targetMessageId}`);
    this.#user(c.userId);
    const guildId = store.guildIdOf(m.channelId);
    const isIt = (cmd: Json): boolean => cmd.name === c.name && cmd.type === 3;
    const cmd = store.commandsOf(guildId).find(isIt) ?? store.commandsOf('global').find(isIt);
    if (!cmd)
      throw new Error(`runMessageCommand: no message command ${JSON.stringify(c.name)} is registered`);
    if (
      typeof cmd.default_member_permissions === 'string' &&
      !this.#commandOverrides.has(`${c.name}:${c.userId}`) &&
      !has(store.permissionsOf(c.userId, guildId), BigInt(cmd.default_member_permissions))
    ) {
      throw new Error(`${c.name} is not available to ${c.userId} (default_member_permissions)`);
    }
    const data: Json = {
      id: cmd.id ?? store.ids.next(),
      name: c.name,
      type: 3,
      target_id: m.id,
      resolved: { messages: { [m.id]: store.messageJson(m) } },
    };
    if (cmd.guild_id !== undefined) data.guild_id = cmd.guild_id;
    const rec = this.#ctx.gateway.deliverVia(c.via, guildId, () =>
      this.#interact(InteractionType.APPLICATION_COMMAND, m.channelId, c.userId, data),
    );
    return this.#handle(rec);
  }

  readonly #commandOverrides = new Set<string>();

  /** What a server admin does in Integrations settings: let this member use a command whatever it requires. */
  allowCommand(name: string, userId: string): void {
    this.#commandOverrides.add(`${name}:${userId}`);
  }

  clickButton(c: {
    messageId: string;
    customId: string;
    userId: string;
    stale?: boolean;
    via?: string;
  }): InteractionHandle {
    const { store } = this.#ctx;
    const m = store.messages.get(c.messageId);
    if (!m || m.deleted) throw new Error(`clickButton: unknown message ${c.messageId}`);
    this.#user(c.userId);
    if (m.ephemeral && m.visibleTo !== c.userId) {
      throw new Error(`clickButton: message ${m.id} is ephemeral and not visible to ${c.userId}`);
    }
    // A client still showing an older render of the message can click a button that is gone or disabled now.
    const comp = c.stale ? { type: 2 } : findComponent(m.components, c.customId);
    if (!comp) {
      throw new Error(
        `clickButton: message ${m.id} has no component with custom_id ${JSON.stringify(c.customId)}`,
      );
    }
    if (!c.stale && comp.disabled === true)
      throw new Error(`clickButton: component ${c.customId} is disabled`);
    const componentType = typeof comp.type === 'number' ? comp.type : 2;
    const data: Json = { custom_id: c.customId, component_type: componentType };
    if (componentType !== 2) data.values = [];
    const rec = this.#ctx.gateway.deliverVia(c.via, store.guildIdOf(m.channelId), () =>
      createInteraction(this.#ctx, {
        type: InteractionType.MESSAGE_COMPONENT,
        channelId: m.channelId,
        userId: c.userId,
        data,
        sourceMessage: m,
      }),
    );
    return this.#handle(rec);
  }

  async autocomplete(c: {
    channelId: string;
    userId: string;
    name: string;
    subcommand?: string;
    options: Record<string, string | number>;
    focused: string;
  }): Promise<{ name: string; value: string | number }[]> {
    const data = this.#commandData(
      this.#guildOf(c.channelId),
      c.name,
      c.userId,
      c.subcommand,
      c.options,
      c.focused,
    );
    const rec = this.#interact(InteractionType.AUTOCOMPLETE, c.channelId, c.userId, data);
    await this.#handle(rec).acked();
    const choices = rec.ackData?.choices;
    return Array.isArray(choices)
      ? (structuredClone(choices) as { name: string; value: string | number }[])
      : [];
  }

  #interact(type: number, channelId: string, userId: string, data: Json): InteractionRec {
    if (!this.#ctx.store.channels.has(channelId)) throw new Error(`unknown channel ${channelId}`);
    this.#user(userId);
    return createInteraction(this.#ctx, { type, channelId, userId, data });
  }

  #guildOf(channelId: string): string {
    const ch = this.#ctx.store.channels.get(channelId);
    if (!ch) throw new Error(`unknown channel ${channelId}`);
    return ch.guildId;
  }

  /** A command as the guild sees it: its own guild commands, then the global ones. */
  #findCommand(guildId: string, name: string): Json | undefined {
    const { store } = this.#ctx;
    const isIt = (cmd: Json): boolean => cmd.name === name && (cmd.type ?? 1) === 1;
    return store.commandsOf(guildId).find(isIt) ?? store.commandsOf('global').find(isIt);
  }

  #commandData(
    guildId: string,
    name: string,
    userId: string,
    subcommand: string | undefined,
    values: Record<string, OptionValue>,
    focused: string | undefined,
  ): Json {
    const { store } = this.#ctx;
    this.#user(userId);
    const cmd = this.#findCommand(guildId, name);
    // Unregistered commands pass (emulator tests run ad-hoc ones); one registered in other guilds only does not
    // exist here, as in Discord: a bot that registers in one guild (DISCORD_GUILD_ID) has no commands elsewhere.
    if (!cmd) {
      const elsewhere = [...store.commandScopes].filter(([, list]) =>
        list.some((c) => c.name === name && (c.type ?? 1) === 1),
      );
      if (elsewhere.length > 0)
        throw new Error(
          `/${name} is not registered in guild ${guildId} (only in ${elsewhere.map(([scope]) => `guild ${scope}`).join(', ')})`,
        );
    }
    if (
      cmd &&
      typeof cmd.default_member_permissions === 'string' &&
      !this.#commandOverrides.has(`${name}:${userId}`)
    ) {
      const needed = BigInt(cmd.default_member_permissions);
      if (!has(store.permissionsOf(userId, guildId), needed)) {
        throw new Error(`/${name} is not available to ${userId} (default_member_permissions ${needed})`);
      }
    }
    const resolved: Record<string, Record<string, Json>> = {};
    let defs: OptionDef[] | undefined = cmd ? ((cmd.options as OptionDef[] | undefined) ?? []) : undefined;
    const path = subcommand?.split(' ').filter(Boolean) ?? [];
    const wrappers: { type: number; name: string }[] = [];
    for (const part of path) {
      const def = defs?.find((d) => d.name === part);
      if (defs !== undefined && (!def || (def.type !== 1 && def.type !== 2))) {
        throw new Error(`/${name} has no subcommand ${part}`);
      }
      const type = def?.type ?? (part === path[path.length - 1] ? 1 : 2);
      wrappers.push({ type, name: part });
      defs = def ? (def.options ?? []) : undefined;
    }
    if (defs?.some((d) => d.type === 1 || d.type === 2)) {
      throw new Error(`/${name} needs a subcommand (${defs.map((d) => d.name).join(', ')})`);
    }
    const options: Json[] = Object.entries(values).map(([optName, value]) => {
      const def = defs?.find((d) => d.name === optName);
      if (defs !== undefined && !def) throw new Error(`/${name} has no option ${optName}`);
      return this.#option(guildId, def?.type, optName, value, optName === focused, resolved);
    });
    if (defs !== undefined && focused === undefined) {
      for (const d of defs) {
        if (d.required && !(d.name in values)) throw new Error(`/${name}: option ${d.name} is required`);
      }
    }
    let top: Json[] = options;
    for (const w of [...wrappers].reverse()) top = [{ type: w.type, name: w.name, options: top }];
    const data: Json = { id: cmd?.id ?? store.ids.next(), name, type: 1 };
    if (top.length > 0) data.options = top;
    if (cmd?.guild_id !== undefined) data.guild_id = cmd.guild_id;
    if (Object.keys(resolved).length > 0) data.resolved = resolved;
    return data;
  }

  #option(
    guildId: string,
    declared: number | undefined,
    name: string,
    value: OptionValue,
    focused: boolean,
    resolved: Record<string, Record<string, Json>>,
  ): Json {
    const { store } = this.#ctx;
    const type =
      declared ??
      (typeof value === 'boolean'
        ? OptionType.BOOLEAN
        : typeof value === 'number'
          ? Number.isInteger(value)
            ? OptionType.INTEGER
            : OptionType.NUMBER
          : OptionType.STRING);
    const add = (kind: string, id: string, json: Json): void => {
      resolved[kind] ??= {};
      const bucket = resolved[kind];
      if (bucket) bucket[id] = json;
    };
    let v: OptionValue = value;
    if (focused) {
      v = typeof value === 'boolean' ? String(value) : value;
    } else if (type === OptionType.STRING) {
      v = String(value);
    } else if (type === OptionType.INTEGER || type === OptionType.NUMBER) {
      v = Number(value);
      if (Number.isNaN(v) || (type === OptionType.INTEGER && !Number.isInteger(v))) {
        throw new Error(`option ${name} needs ${type === OptionType.INTEGER ? 'an integer' : 'a number'}`);
      }
    } else if (type === OptionType.BOOLEAN) {
      v = value === true || value === 'true';
    } else {
      const id = String(value);
      v = id;
      if ((type === OptionType.USER || type === OptionType.MENTIONABLE) && store.users.has(id)) {
        add('users', id, store.userJson(id));
        const member = store.memberJson(id, false, guildId);
        if (member)
          add('members', id, { ...member, permissions: store.permissionsOf(id, guildId).toString() });
      } else if ((type === OptionType.ROLE || type === OptionType.MENTIONABLE) && store.roles.has(id)) {
        const role = store.roles.get(id);
        if (role) add('roles', id, store.roleJson(role));
      } else if (type === OptionType.CHANNEL && store.channels.has(id)) {
        const ch = store.channels.get(id);
        if (ch)
          add('channels', id, {
            ...store.channelJson(ch),
            permissions: store.permissionsOf(id, guildId).toString(),
          });
      } else {
        throw new Error(
          `option ${name}: unknown ${type === OptionType.CHANNEL ? 'channel' : 'user or role'} ${id}`,
        );
      }
    }
    return focused ? { type, name, value: v, focused: true } : { type, name, value: v };
  }

  #handle(rec: InteractionRec): InteractionHandle {
    const { store, config } = this.#ctx;
    const notAcked = (): string | undefined =>
      rec.ackType === undefined && rec.expired
        ? `interaction ${rec.id} was not acknowledged within ${config.interactionAckMs} ms`
        : rec.error && rec.ackType === undefined
          ? `interaction ${rec.id} failed: ${rec.error.code} ${rec.error.message}`
          : undefined;
    return {
      id: rec.id,
      token: rec.token,
      acked: () =>
        this.waitFor(() => (rec.ackType !== undefined ? { type: rec.ackType } : undefined), {
          message: `interaction ${rec.id} acknowledged`,
          fail: notAcked,
        }),
      response: (opts = {}) =>
        this.waitFor(
          () => {
            if (!rec.responded || rec.responseMessageId === undefined) return undefined;
            const m = store.messages.get(rec.responseMessageId);
            return m ? store.messageView(m) : undefined;
          },
          {
            timeoutMs: opts.timeoutMs,
            message: `a visible response to interaction ${rec.id} (acked with type ${rec.ackType ?? 'none yet'})`,
            fail: () =>
              notAcked() ??
              (rec.ackType === 8 || rec.ackType === 9
                ? `interaction ${rec.id} was answered with type ${rec.ackType}, which shows no message`
                : undefined),
          },
        ),
      followups: () =>
        rec.followupIds.flatMap((id) => {
          const m = store.messages.get(id);
          return m && !m.deleted ? [store.messageView(m)] : [];
        }),
      error: () => (rec.error ? { ...rec.error } : undefined),
    };
  }

  // ---- observing ----

  messages(channelId: string): MessageView[] {
    const { store } = this.#ctx;
    return store.liveMessages(channelId).map((m) => store.messageView(m));
  }

  message(id: string): MessageView | undefined {
    const { store } = this.#ctx;
    const m = store.messages.get(id);
    return m && !m.deleted ? store.messageView(m) : undefined;
  }

  channel(id: string): ChannelView | undefined {
    const { store } = this.#ctx;
    const c = store.channels.get(id);
    return c ? store.channelView(c) : undefined;
  }

  threadsOf(parentId: string): ChannelView[] {
    const { store } = this.#ctx;
    return [...store.channels.values()]
      .filter((c) => isThread(c) && c.parentId === parentId)
      .map((c) => store.channelView(c));
  }

  commands(guildId?: string): unknown[] {
    return structuredClone(this.#ctx.store.commandsOf(guildId ?? 'global'));
  }
}
