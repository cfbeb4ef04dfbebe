import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { z } from 'zod';

import { type BackendKind, backendKinds } from './core/model.ts';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const snowflake = z.string().regex(/^\d{17,20}$/, 'must be a Discord id (17 to 20 digits)');
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const storeUrl = z
  .string()
  .regex(
    /^(sqlite|redis|rediss):\/\/.+/,
    'must start with sqlite:// or redis:// (for example sqlite://data/threadfork.sqlite)',
  );
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
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

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
  STORE_URL: optional(storeUrl).default('sqlite://data/threadfork.sqlite'),
  LOCK_TTL_MS: optional(int(1000, 600_000)).default(30_000),
  SHARD_COUNT: optional(int(1, 100_000)),
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
  LOG_LEVEL: optional(z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` })).default('info'),
  METRICS_PORT: optional(int(1, 65_535)),
  METRICS_HOST: optional(host).default('127.0.0.1'),
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
  storeUrl: string;
  /** With a Redis store: how long a thread's lock outlives a holder that stopped renewing it (a dead process). */
  lockTtlMs: number;
  /** On SIGTERM: how long running replies may go on before they are stopped (then the bot closes within ~5 s). */
  shutdownGraceMs: number;
  /** For `npm run start:sharded`: how many shards; undefined asks Discord (GET /gateway/bot). */
  shardCount: number | undefined;
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
  if (e.ALTERNATIVES_DEFAULT > e.ALTERNATIVES_MAX) {
    throw new ConfigError([`ALTERNATIVES_DEFAULT must be at most ALTERNATIVES_MAX (${e.ALTERNATIVES_MAX})`]);
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
    storeUrl: e.STORE_URL,
    lockTtlMs: e.LOCK_TTL_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_SECONDS * 1000,
    shardCount: e.SHARD_COUNT,
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
