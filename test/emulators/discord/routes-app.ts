// Gateway discovery, users, application, guild and application command routes.
import type { Ctx } from './context.ts';
import { Errors, FormErrorCollector } from './errors.ts';
import { type RouteDef, route } from './router.ts';
import { isThread, type Json } from './state.ts';

type Obj = Record<string, unknown>;

function guildOr404(ctx: Ctx, id: string | undefined): string {
  if (id === undefined || !ctx.store.guilds.has(id)) throw Errors.unknownGuild();
  return id;
}

function appOr403(ctx: Ctx, id: string | undefined): void {
  if (id !== ctx.store.applicationId) throw Errors.missingAccess();
}

function gatewayInfo(ctx: Ctx): Json {
  return {
    url: ctx.gateway.url,
    shards: ctx.config.recommendedShards,
    session_start_limit: ctx.gateway.sessionStartLimit(),
  };
}

function applicationJson(ctx: Ctx): Json {
  const { store } = ctx;
  return {
    id: store.applicationId,
    name: 'threadfork',
    icon: null,
    description: '',
    summary: '',
    type: null,
    bot_public: true,
    bot_require_code_grant: false,
    verify_key: '0'.repeat(64),
    flags: 1 << 19,
    owner: store.userJson(store.ownerId),
    team: null,
    bot: store.userJson(store.botUserId),
    approximate_guild_count: store.guilds.size,
    redirect_uris: [],
    interactions_endpoint_url: null,
    integration_types_config: { '0': {} },
  };
}

const NAME = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

function checkCommand(c: FormErrorCollector, cmd: Obj, path: (string | number)[]): void {
  const type = typeof cmd.type === 'number' ? cmd.type : 1;
  const name = typeof cmd.name === 'string' ? cmd.name : '';
  if (type === 1) {
    if (!NAME.test(name) || name !== name.toLowerCase()) {
      c.add([...path, 'name'], 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
    }
    const d = typeof cmd.description === 'string' ? cmd.description : '';
    if (d.length < 1 || d.length > 100) {
      c.add([...path, 'description'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
    }
  }
  checkOptions(c, cmd.options, [...path, 'options']);
}

function checkOptions(c: FormErrorCollector, options: unknown, path: (string | number)[]): void {
  if (!Array.isArray(options)) return;
  if (options.length > 25) c.add(path, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
  let sawOptional = false;
  const names = new Set<string>();
  options.forEach((o: unknown, n: number) => {
    const opt = (typeof o === 'object' && o !== null ? o : {}) as Obj;
    const name = typeof opt.name === 'string' ? opt.name : '';
    if (!NAME.test(name) || name !== name.toLowerCase()) {
      c.add([...path, n, 'name'], 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
    }
    if (names.has(name)) {
      c.add(
        [...path, n, 'name'],
        'APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS',
        'Option names must be unique',
      );
    }
    names.add(name);
    const d = typeof opt.description === 'string' ? opt.description : '';
    if (d.length < 1 || d.length > 100) {
      c.add([...path, n, 'description'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
    }
    if (opt.type === 1 || opt.type === 2) {
      checkOptions(c, opt.options, [...path, n, 'options']);
    } else if (opt.required === true && sawOptional) {
      c.add(
        [...path, n, 'required'],
        'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID',
        'Required options must be placed before non-required options',
      );
    } else if (opt.required !== true) {
      sawOptional = true;
    }
    if (Array.isArray(opt.choices) && opt.choices.length > 25) {
      c.add([...path, n, 'choices'], 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    }
  });
}

function commandJson(ctx: Ctx, id: string, cmd: Obj, guildId: string | undefined): Json {
  const type = typeof cmd.type === 'number' ? cmd.type : 1;
  const out: Json = {
    id,
    application_id: ctx.store.applicationId,
    version: ctx.store.ids.next(),
    default_member_permissions: cmd.default_member_permissions ?? null,
    type,
    name: cmd.name,
    name_localizations: cmd.name_localizations ?? null,
    description: typeof cmd.description === 'string' ? cmd.description : '',
    description_localizations: cmd.description_localizations ?? null,
    dm_permission: cmd.dm_permission ?? true,
    contexts: cmd.contexts ?? null,
    integration_types: cmd.integration_types ?? [0],
    nsfw: cmd.nsfw ?? false,
  };
  if (Array.isArray(cmd.options) && cmd.options.length > 0) out.options = structuredClone(cmd.options);
  if (guildId !== undefined) out.guild_id = guildId;
  return out;
}

function sameCommand(a: Json, b: Obj): boolean {
  return a.name === b.name && a.type === (typeof b.type === 'number' ? b.type : 1);
}

function commandRoutes(prefix: string, scopeOf: (p: Record<string, string>) => string): RouteDef[] {
  const guildOf = (p: Record<string, string>): string | undefined => p.guild_id;
  const check = (ctx: Ctx, p: Record<string, string>): void => {
    appOr403(ctx, p.application_id);
    if (p.guild_id !== undefined) guildOr404(ctx, p.guild_id);
  };
  return [
    route('GET', prefix, {
      auth: 'bot',
      handle: ({ ctx, params }) => {
        check(ctx, params);
        return { status: 200, body: structuredClone(ctx.store.commandsOf(scopeOf(params))) };
      },
    }),
    route('PUT', prefix, {
      auth: 'bot',
      schema: 'CommandsBulk',
      handle: ({ ctx, params, body }) => {
        check(ctx, params);
        const list = (Array.isArray(body) ? body : []) as Obj[];
        const c = new FormErrorCollector();
        list.forEach((cmd, n) => {
          checkCommand(c, cmd, [n]);
        });
        c.throwIfAny();
        const scope = scopeOf(params);
        const existing = ctx.store.commandsOf(scope);
        const next = list.map((cmd) => {
          const prev = existing.find((e) => sameCommand(e, cmd));
          return commandJson(ctx, String(prev?.id ?? ctx.store.ids.next()), cmd, guildOf(params));
        });
        ctx.store.commandScopes.set(scope, next);
        ctx.store.changed();
        return { status: 200, body: structuredClone(next) };
      },
    }),
    route('POST', prefix, {
      auth: 'bot',
      schema: 'ApplicationCommandCreateRequest',
      handle: ({ ctx, params, body }) => {
        check(ctx, params);
        const cmd = body as Obj;
        const c = new FormErrorCollector();
        checkCommand(c, cmd, []);
        c.throwIfAny();
        const list = ctx.store.commandsOf(scopeOf(params));
        const idx = list.findIndex((e) => sameCommand(e, cmd));
        const prev = idx >= 0 ? list[idx] : undefined;
        const json = commandJson(ctx, String(prev?.id ?? ctx.store.ids.next()), cmd, guildOf(params));
        if (idx >= 0) list[idx] = json;
        else list.push(json);
        ctx.store.changed();
        return { status: idx >= 0 ? 200 : 201, body: structuredClone(json) };
      },
    }),
    route('GET', `${prefix}/:command_id`, {
      auth: 'bot',
      handle: ({ ctx, params }) => {
        check(ctx, params);
        const found = ctx.store.commandsOf(scopeOf(params)).find((e) => e.id === params.command_id);
        if (!found) throw Errors.unknownCommand();
        return { status: 200, body: structuredClone(found) };
      },
    }),
    route('DELETE', `${prefix}/:command_id`, {
      auth: 'bot',
      handle: ({ ctx, params }) => {
        check(ctx, params);
        const list = ctx.store.commandsOf(scopeOf(params));
        const idx = list.findIndex((e) => e.id === params.command_id);
        if (idx < 0) throw Errors.unknownCommand();
        list.splice(idx, 1);
        ctx.store.changed();
        return { status: 204 };
      },
    }),
  ];
}

export const appRoutes: RouteDef[] = [
  route('GET', '/gateway', {
    auth: 'none',
    handle: ({ ctx }) => ({ status: 200, body: { url: ctx.gateway.url } }),
  }),
  route('GET', '/gateway/bot', {
    auth: 'bot',
    handle: ({ ctx }) => ({ status: 200, body: gatewayInfo(ctx) }),
  }),
  route('GET', '/users/@me', {
    auth: 'bot',
    handle: ({ ctx }) => ({
      status: 200,
      body: { ...ctx.store.userJson(ctx.store.botUserId), verified: true, mfa_enabled: false, email: null },
    }),
  }),
  route('GET', '/users/:user_id', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const id = params.user_id ?? '';
      if (!ctx.store.users.has(id)) throw Errors.unknownUser();
      return { status: 200, body: ctx.store.userJson(id) };
    },
  }),
  route('GET', '/applications/@me', {
    auth: 'bot',
    handle: ({ ctx }) => ({ status: 200, body: applicationJson(ctx) }),
  }),
  route('GET', '/guilds/:guild_id', {
    auth: 'bot',
    handle: ({ ctx, params, query }) => {
      const guildId = guildOr404(ctx, params.guild_id);
      const body: Json = ctx.store.guildJson(guildId);
      if (query.get('with_counts') === 'true') {
        body.approximate_member_count = ctx.store.guild(guildId).members.size;
        body.approximate_presence_count = 0;
      }
      return { status: 200, body };
    },
  }),
  route('GET', '/guilds/:guild_id/channels', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const guildId = guildOr404(ctx, params.guild_id);
      const list = [...ctx.store.channels.values()]
        .filter((c) => !isThread(c) && c.guildId === guildId)
        .map((c) => ctx.store.channelJson(c));
      return { status: 200, body: list };
    },
  }),
  route('GET', '/guilds/:guild_id/threads/active', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const guildId = guildOr404(ctx, params.guild_id);
      const { store } = ctx;
      const threads = [...store.channels.values()].filter(
        (c) => isThread(c) && !c.archived && c.guildId === guildId,
      );
      const members = threads.flatMap((t) => {
        const at = t.members.get(store.botUserId);
        return at === undefined ? [] : [store.threadMemberJson(t, store.botUserId, at)];
      });
      return { status: 200, body: { threads: threads.map((t) => store.channelJson(t)), members } };
    },
  }),
  route('GET', '/guilds/:guild_id/members/:user_id', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const guildId = guildOr404(ctx, params.guild_id);
      const member = ctx.store.memberJson(params.user_id ?? '', true, guildId);
      if (!member) throw Errors.unknownMember();
      return { status: 200, body: member };
    },
  }),
  route('GET', '/guilds/:guild_id/roles', {
    auth: 'bot',
    handle: ({ ctx, params }) => {
      const guildId = guildOr404(ctx, params.guild_id);
      return { status: 200, body: ctx.store.rolesOf(guildId).map((r) => ctx.store.roleJson(r)) };
    },
  }),
  ...commandRoutes('/applications/:application_id/commands', () => 'global'),
  ...commandRoutes('/applications/:application_id/guilds/:guild_id/commands', (p) => p.guild_id ?? ''),
];
