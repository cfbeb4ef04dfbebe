import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { z } from 'zod';

import { DEFAULT_PRICES, type Price, type PriceTable } from './core/budgets.ts';
import { type ContextMode, contextModes } from './core/context-windows.ts';
import { type BackendKind, backendKinds } from './core/model.ts';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const snowflake = z.string().regex(/^\d{17,20}$/, 'must be a Discord id (17 to 20 digits)');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const ENCODE_HINT =
  'is not a valid URL: in a user name or password write @ # / ? % : and spaces as %40 %23 %2F %3F %25 %3A %20';
/** Why a STORE_URL cannot be used as it is written, without repeating any of it (it may hold a password). */
function storeUrlProblem(value: string): string | undefined {
  if (!/^rediss?:/.test(value)) return undefined;
  // A # starts the URL's fragment: what follows (often the rest of a password and the host) would be dropped.
  if (value.includes('#')) return ENCODE_HINT;
  try {
    const url = new URL(value);
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    if (!url.hostname) return ENCODE_HINT;
  } catch {
    return ENCODE_HINT;
  }
  return undefined;
}
const storeUrl = z
  .string()
  .regex(
    /^(sqlite|redis|rediss):\/\/.+/,
    'must start with sqlite:// or redis:// (for example sqlite://data/threadfork.sqlite)',
  )
  .superRefine((value, ctx) => {
    const problem = storeUrlProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * The parts of a STORE_URL that must never be logged: its password (as written and decoded) and, when it has user
 * information, the whole URL. Read from the text itself, so a URL that does not parse is covered too.
 */
export function storeUrlSecrets(value: string): string[] {
  const userinfo = /^[a-z]+:\/\/(.*)@/i.exec(value)?.[1];
  if (userinfo === undefined) return [];
  const password = userinfo.includes(':') ? userinfo.slice(userinfo.indexOf(':') + 1) : userinfo;
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // Written with a stray %: the text as written is what could show up.
  }
  return [value, userinfo, password, decoded];
}
const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const host = z
  .string()
  .regex(
    /^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$/,
    'must be a host name or IP address (127.0.0.1 for this machine only, 0.0.0.0 for every interface)',
  );
const idList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^\d{17,20}$/, 'must be comma-separated Discord role ids')));
/** SHARD_IDS: shard ids and ranges, `0-2,5`; sorted, without repeats. */
const shardIdList = z.string().transform((text, ctx) => {
  const ids = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const match = /^(\d{1,6})(?:\s*-\s*(\d{1,6}))?$/.exec(part);
    const from = Number(match?.[1]);
    const to = match?.[2] === undefined ? from : Number(match[2]);
    if (!match || to < from) {
      ctx.addIssue({ code: 'custom', message: 'must be shard ids and ranges, such as 0-2,5' });
      return z.NEVER;
    }
    for (let id = from; id <= to; id += 1) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
});
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());
const bool = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');
const tokenLimit = optional(int(0, 1_000_000_000_000)).default(0);
const modelList = z.string().transform((s) =>
  s
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean),
);
/** CONTEXT_WINDOWS: `model=tokens,model=tokens` (a name also matches its dated snapshots, as in the known table). */
const contextWindows = z.string().transform((text, ctx) => {
  const windows = new Map<string, number>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([^=\s]+)\s*=\s*(\d+)$/.exec(part);
    const tokens = Number(match?.[2]);
    if (!match || !Number.isInteger(tokens) || tokens < 256) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be model=tokens pairs, comma-separated (tokens at least 256)',
      });
      return z.NEVER;
    }
    windows.set(match[1]!, tokens);
  }
  return windows;
});
const perMillion = z.number({ error: 'prices must be numbers (USD per million tokens)' }).min(0);
/** PRICES: `{"model": {"input": 0.4, "cachedInput": 0.1, "output": 1.6}}`, USD per million tokens. */
const prices = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'must be JSON: {"model": {"input": …, "cachedInput": …, "output": …}}',
      });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(
      z.string().min(1),
      z.object({ input: perMillion, cachedInput: perMillion.optional(), output: perMillion }),
      { error: 'must be JSON: {"model": {"input": …, "cachedInput": …, "output": …}}' },
    ),
  );

const envSchema = z.object({
  DISCORD_TOKEN: z
    .string({ error: 'is required (the bot token from the Discord developer portal)' })
    .min(1, 'is required'),
  DISCORD_API_URL: optional(httpUrl),
  DISCORD_GUILD_ID: optional(snowflake),
  OPENAI_API_KEY: z.string({ error: 'is required' }).min(1, 'is required'),
  OPENAI_BASE_URL: optional(httpUrl),
  OPENAI_MODEL: optional(z.string().min(1)).default('gpt-4.1-mini'),
  INSTRUCTIONS: optional(z.string()),
  BACKEND: optional(z.enum(backendKinds, { error: `must be one of ${backendKinds.join(', ')}` })).default(
    'conversations',
  ),
  CHAT_CONTEXT_TOKENS: optional(int(256, 10_000_000)).default(8192),
  CONTEXT_MODE: optional(
    z.enum(contextModes, { error: `must be one of ${contextModes.join(', ')}` }),
  ).default('auto'),
  CONTEXT_WINDOWS: optional(contextWindows),
  CONTEXT_THRESHOLD_PERCENT: optional(int(10, 95)).default(60),
  CONTEXT_KEEP_PERCENT: optional(int(5, 90)).default(30),
  STORE_URL: optional(storeUrl).default('sqlite://data/threadfork.sqlite'),
  LOCK_TTL_MS: optional(int(1000, 600_000)).default(30_000),
  SHARD_COUNT: optional(int(1, 100_000)),
  SHARD_IDS: optional(shardIdList),
  ALTERNATIVES_DEFAULT: optional(int(2, 5)).default(2),
  ALTERNATIVES_MAX: optional(int(2, 5)).default(5),
  ALTERNATIVES_COOLDOWN_SECONDS: optional(int(0, 3600)).default(30),
  VOTE_SECONDS: optional(int(5, 86_400)).default(120),
  VOTE_QUORUM: optional(int(0, 100)).default(0),
  BLIND_VOTES: optional(z.enum(['true', 'false'], { error: 'must be true or false' })).default('false'),
  EXPORT_SALT: optional(z.string().min(16, 'must be at least 16 characters')),
  MODERATOR_ROLE_IDS: optional(idList).default([]),
  AUDIT_CHANNEL_ID: optional(snowflake),
  SHUTDOWN_GRACE_SECONDS: optional(int(0, 600)).default(10),
  ATTACHMENT_TIMEOUT_SECONDS: optional(int(1, 120)).default(10),
  LOG_LEVEL: optional(z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` })).default('info'),
  METRICS_PORT: optional(int(1, 65_535)),
  METRICS_HOST: optional(host).default('127.0.0.1'),
  BUDGET_USER_DAILY_TOKENS: tokenLimit,
  BUDGET_USER_MONTHLY_TOKENS: tokenLimit,
  BUDGET_SERVER_DAILY_TOKENS: tokenLimit,
  BUDGET_SERVER_MONTHLY_TOKENS: tokenLimit,
  BUDGET_EXEMPT_MODERATORS: optional(bool).default(false),
  BUDGET_RESERVE_OUTPUT_TOKENS: optional(int(1, 1_000_000)).default(1000),
  PRICES: optional(prices),
  ALLOWED_MODELS: optional(modelList),
  STYLE_MAX_LENGTH: optional(int(1, 1000)).default(200),
  RATE_LIMIT_MESSAGES: optional(int(0, 10_000)).default(10),
  RATE_LIMIT_SECONDS: optional(int(1, 86_400)).default(60),
  MAX_QUEUED_MESSAGES: optional(int(0, 10_000)).default(25),
  IMAGE_MAX_BYTES: optional(int(1024, 50 * 1024 * 1024)).default(5 * 1024 * 1024),
  FILE_MAX_BYTES: optional(int(1024, 50 * 1024 * 1024)).default(10 * 1024 * 1024),
  ATTACHMENTS_PER_MESSAGE: optional(int(0, 10)).default(4),
  THREAD_ATTACHMENT_BYTES: optional(int(0, 1024 * 1024 * 1024)).default(50 * 1024 * 1024),
  FORK_IMAGE_DETAIL: optional(
    z.enum(['low', 'high', 'auto'], { error: 'must be low, high or auto' }),
  ).default('low'),
});

/** The bot's whole configuration, parsed once at start. Nothing else reads `process.env`. */
export interface Config {
  discord: {
    token: string;
    apiUrl: string | undefined;
    guildId: string | undefined;
    auditChannelId: string | undefined;
  };
  openai: { apiKey: string; baseUrl: string | undefined; model: string; instructions: string | undefined };
  backend: BackendKind;
  /** For BACKEND=chat: the prompt budget; the oldest turns are dropped to stay under it. */
  chatContextTokens: number;
  /** Long threads (README, "Long threads"): when and how the oldest part of a branch's history is condensed. */
  context: {
    mode: ContextMode;
    /** Context windows over the known table (model -> tokens). */
    windows: Map<string, number>;
    /** Window of a model neither table knows: CHAT_CONTEXT_TOKENS. */
    defaultWindow: number;
    thresholdShare: number;
    keepShare: number;
  };
  storeUrl: string;
  /** With a Redis store: how long a thread's lock outlives a holder that stopped renewing it (a dead process). */
  lockTtlMs: number;
  /** On SIGTERM: how long running replies may go on before they are stopped (then the bot closes within ~5 s). */
  shutdownGraceMs: number;
  /** How long downloading one text attachment of a message in a managed thread may take before it is left out. */
  attachmentTimeoutMs: number;
  /** For `npm run start:sharded`: how many shards; undefined asks Discord (GET /gateway/bot). */
  shardCount: number | undefined;
  /**
   * For `npm run start:sharded` on one of several machines: the shards this machine runs (SHARD_IDS), out of
   * `shardCount` on all of them; undefined runs them all.
   */
  shardIds: number[] | undefined;
  alternatives: {
    defaultCount: number;
    maxCount: number;
    cooldownMs: number;
    voteMs: number;
    /** Votes that close a vote at once; 0: a majority of the people active in the thread. */
    quorum: number;
    /** New threads vote blind: alternatives by letter only, shuffled, revealed when the vote closes. */
    blind: boolean;
  };
  moderatorRoleIds: string[];
  /** Salt for the voters' hashes in /export votes; undefined: a random salt made once and kept in the store. */
  exportSalt: string | undefined;
  logLevel: (typeof logLevels)[number];
  /**
   * The HTTP endpoint for Prometheus metrics, /healthz and /readyz; undefined (no METRICS_PORT) serves none. Run
   * sharded, the manager serves on `port` and shard N on `port + 1 + N`.
   */
  metrics: { port: number; host: string } | undefined;
  /** Token budgets (0: unlimited) and the prices that turn tokens into an estimated cost. */
  budgets: {
    userDaily: number;
    userMonthly: number;
    serverDaily: number;
    serverMonthly: number;
    exemptModerators: boolean;
    /** The reply length a reservation expects before the real usage is known. */
    reserveOutputTokens: number;
    prices: PriceTable;
  };
  /** Abuse limits; 0 turns a number off. `allowedModels` empty: any model (ALLOWED_MODELS=*). */
  abuse: {
    allowedModels: string[];
    maxStyleLength: number;
    rateMessages: number;
    rateWindowMs: number;
    maxQueued: number;
  };
  /** Images and PDFs posted in threads: what the bot keeps for the model (see README, "Images and files"). */
  attachments: {
    imageMaxBytes: number;
    fileMaxBytes: number;
    /** Images and files read from one message; 0 reads none. */
    perMessage: number;
    /** Bytes of images and files one thread may hold in all. */
    threadMaxBytes: number;
    /** `detail` of images sent to alternatives, which pay for them once each. */
    forkImageDetail: 'low' | 'high' | 'auto';
  };
}

/** A configuration problem: one line per bad variable, never the value itself (it may be a secret). */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses the environment. Throws ConfigError naming each bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${String(issue.path[0] ?? 'environment')} ${issue.message}`,
    );
    throw new ConfigError([...new Set(problems)]);
  }
  const e = result.data;
  if (e.SHARD_IDS !== undefined) {
    if (e.SHARD_COUNT === undefined)
      throw new ConfigError([
        'SHARD_IDS needs SHARD_COUNT: every machine must agree on the total number of shards',
      ]);
    const outside = e.SHARD_IDS.filter((id) => id >= e.SHARD_COUNT!);
    if (outside.length > 0)
      throw new ConfigError([
        `SHARD_IDS must be below SHARD_COUNT (${e.SHARD_COUNT}): ${outside.join(', ')} is not a shard`,
      ]);
  }
  if (e.ALTERNATIVES_DEFAULT > e.ALTERNATIVES_MAX) {
    throw new ConfigError([`ALTERNATIVES_DEFAULT must be at most ALTERNATIVES_MAX (${e.ALTERNATIVES_MAX})`]);
  }
  if (e.CONTEXT_KEEP_PERCENT >= e.CONTEXT_THRESHOLD_PERCENT) {
    throw new ConfigError([
      `CONTEXT_KEEP_PERCENT must be below CONTEXT_THRESHOLD_PERCENT (${e.CONTEXT_THRESHOLD_PERCENT})`,
    ]);
  }
  return {
    discord: {
      token: e.DISCORD_TOKEN,
      apiUrl: e.DISCORD_API_URL,
      guildId: e.DISCORD_GUILD_ID,
      auditChannelId: e.AUDIT_CHANNEL_ID,
    },
    openai: {
      apiKey: e.OPENAI_API_KEY,
      baseUrl: e.OPENAI_BASE_URL,
      model: e.OPENAI_MODEL,
      instructions: e.INSTRUCTIONS,
    },
    backend: e.BACKEND,
    chatContextTokens: e.CHAT_CONTEXT_TOKENS,
    context: {
      mode: e.CONTEXT_MODE,
      windows: e.CONTEXT_WINDOWS ?? new Map(),
      defaultWindow: e.CHAT_CONTEXT_TOKENS,
      thresholdShare: e.CONTEXT_THRESHOLD_PERCENT / 100,
      keepShare: e.CONTEXT_KEEP_PERCENT / 100,
    },
    storeUrl: e.STORE_URL,
    lockTtlMs: e.LOCK_TTL_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    attachmentTimeoutMs: e.ATTACHMENT_TIMEOUT_SECONDS * 1000,
    shardCount: e.SHARD_COUNT,
    shardIds: e.SHARD_IDS,
    alternatives: {
      defaultCount: e.ALTERNATIVES_DEFAULT,
      maxCount: e.ALTERNATIVES_MAX,
      cooldownMs: e.ALTERNATIVES_COOLDOWN_SECONDS * 1000,
      voteMs: e.VOTE_SECONDS * 1000,
      quorum: e.VOTE_QUORUM,
      blind: e.BLIND_VOTES === 'true',
    },
    moderatorRoleIds: e.MODERATOR_ROLE_IDS,
    exportSalt: e.EXPORT_SALT,
    logLevel: e.LOG_LEVEL,
    metrics: e.METRICS_PORT === undefined ? undefined : { port: e.METRICS_PORT, host: e.METRICS_HOST },
    budgets: {
      userDaily: e.BUDGET_USER_DAILY_TOKENS,
      userMonthly: e.BUDGET_USER_MONTHLY_TOKENS,
      serverDaily: e.BUDGET_SERVER_DAILY_TOKENS,
      serverMonthly: e.BUDGET_SERVER_MONTHLY_TOKENS,
      exemptModerators: e.BUDGET_EXEMPT_MODERATORS,
      reserveOutputTokens: e.BUDGET_RESERVE_OUTPUT_TOKENS,
      prices: new Map<string, Price>([
        ...DEFAULT_PRICES,
        ...Object.entries(e.PRICES ?? {}).map(
          ([model, p]) =>
            [model, { input: p.input, cachedInput: p.cachedInput ?? p.input, output: p.output }] as const,
        ),
      ]),
    },
    abuse: {
      allowedModels: e.ALLOWED_MODELS?.includes('*') ? [] : (e.ALLOWED_MODELS ?? [e.OPENAI_MODEL]),
      maxStyleLength: e.STYLE_MAX_LENGTH,
      rateMessages: e.RATE_LIMIT_MESSAGES,
      rateWindowMs: e.RATE_LIMIT_SECONDS * 1000,
      maxQueued: e.MAX_QUEUED_MESSAGES,
    },
    attachments: {
      imageMaxBytes: e.IMAGE_MAX_BYTES,
      fileMaxBytes: e.FILE_MAX_BYTES,
      perMessage: e.ATTACHMENTS_PER_MESSAGE,
      threadMaxBytes: e.THREAD_ATTACHMENT_BYTES,
      forkImageDetail: e.FORK_IMAGE_DETAIL,
    },
  };
}

/**
 * Reads `.env` (when present) under the real environment: a variable set in the environment wins over the file, so
 * a deployment can override one value without editing it.
 */
export function readEnv(
  path = '.env',
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string | undefined> {
  let fileText: string;
  try {
    fileText = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ...env };
    throw new ConfigError([`${path} cannot be read: ${(error as Error).message}`]);
  }
  const problems = fileText
    .split(/\r?\n/)
    .map((line, index) => ({ line: line.trim(), number: index + 1 }))
    .filter(
      ({ line }) =>
        line !== '' && !line.startsWith('#') && !/^(export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=/.test(line),
    )
    .map(({ number }) => `${path} line ${number} is not NAME=value`);
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...parseEnv(fileText), ...env };
}

/** The configuration of an entry point (`npm start`, `npm run start:sharded`): a bad one exits 78 (EX_CONFIG) with its lines. */
export function loadConfigOrExit(): Config {
  try {
    return parseConfig(readEnv());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(78);
  }
}

/** `npm run rest-proxy`: one REST proxy in front of Discord for every process of the bot, on every machine. */
export interface RestProxyConfig {
  /**
   * Where the proxy sends requests: REST_PROXY_UPSTREAM (undefined: Discord itself). Not DISCORD_API_URL, which in
   * the bot's .env points at the proxy.
   */
  upstreamUrl: string | undefined;
  port: number;
  host: string;
  logLevel: (typeof logLevels)[number];
}

const restProxySchema = z.object({
  REST_PROXY_UPSTREAM: optional(httpUrl),
  REST_PROXY_PORT: optional(int(0, 65_535)).default(8280),
  REST_PROXY_HOST: optional(host).default('127.0.0.1'),
  LOG_LEVEL: optional(z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` })).default('info'),
});

/** The REST proxy's configuration (it needs no token: each caller's Authorization header goes through). */
export function parseRestProxyConfig(env: Record<string, string | undefined>): RestProxyConfig {
  const result = restProxySchema.safeParse(env);
  if (!result.success)
    throw new ConfigError([
      ...new Set(
        result.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')} ${issue.message}`),
      ),
    ]);
  const e = result.data;
  return {
    upstreamUrl: e.REST_PROXY_UPSTREAM,
    port: e.REST_PROXY_PORT,
    host: e.REST_PROXY_HOST,
    logLevel: e.LOG_LEVEL,
  };
}

export function loadRestProxyConfigOrExit(): RestProxyConfig {
  try {
    return parseRestProxyConfig(readEnv());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(78);
  }
}
