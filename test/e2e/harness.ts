import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NODE_FLAGS, runtimeEnv } from '../../src/node-runtime.ts';
import { createDiscordEmulator, type DiscordEmulator, type MessageView } from '../emulators/discord/index.ts';
import { createOpenAIEmulator, type OpenAIEmulator } from '../emulators/openai/index.ts';

const ENTRY = resolve(import.meta.dirname, '../../src/index.ts');

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The bot as `npm start` runs it: a child process of the real entry point, configured by environment. */
export interface BotProcess {
  pid: number;
  logs: LogLine[];
  stderr: string;
  waitForLog(probe: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<number | null>;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<void>;
  /** SIGKILL: the process dies wherever it is. */
  kill(): Promise<void>;
}

export interface World {
  discord: DiscordEmulator;
  openai: OpenAIEmulator;
  dir: string;
  env: Record<string, string>;
  startBot(extraEnv?: Record<string, string>): Promise<BotProcess>;
  close(): Promise<void>;
}

export async function createWorld(
  options: {
    openai?: Parameters<typeof createOpenAIEmulator>[0];
    discord?: Parameters<typeof createDiscordEmulator>[0];
  } = {},
): Promise<World> {
  const [discord, openai] = await Promise.all([
    createDiscordEmulator(options.discord),
    createOpenAIEmulator(options.openai),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'threadfork-e2e-'));
  const bots: BotProcess[] = [];
  const env = {
    DISCORD_TOKEN: discord.botToken,
    DISCORD_API_URL: discord.apiUrl,
    DISCORD_GUILD_ID: discord.guildId,
    OPENAI_API_KEY: openai.apiKey,
    OPENAI_BASE_URL: openai.baseURL,
    STORE_URL: `sqlite://${join(dir, 'threadfork.sqlite')}`,
    LOG_LEVEL: 'debug',
    // Tests post bursts of messages; the ones about these limits set them (test/e2e/abuse-limits.test.ts).
    RATE_LIMIT_MESSAGES: '0',
    MAX_QUEUED_MESSAGES: '0',
  };
  return {
    discord,
    openai,
    dir,
    env,
    async startBot(extraEnv = {}) {
      const bot = spawnBot({ ...env, ...extraEnv }, dir);
      bots.push(bot);
      await Promise.race([
        // A start takes a second or two on an idle machine, several times that beside CPU-bound work.
        bot.waitForLog((line) => line.msg === 'threadfork is running', 60_000),
        bot.exited.then((code) => {
          throw new Error(
            `bot exited with ${code} before it was ready:\n${bot.stderr}\n${bot.logs.map((l) => JSON.stringify(l)).join('\n')}`,
          );
        }),
      ]);
      return bot;
    },
    async close() {
      await Promise.all(bots.map((bot) => bot.kill()));
      await Promise.all([discord.close(), openai.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `detached`: the process leads a process group of its own (its children with it), which `pid` names. */
export function spawnBot(
  env: Record<string, string>,
  cwd: string,
  entry: string = ENTRY,
  options: { detached?: boolean } = {},
): BotProcess {
  // Started as `npm start` starts it: the same V8 flags and compile cache (src/node-runtime.ts).
  const child: ChildProcess = spawn(process.execPath, [...NODE_FLAGS, entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, ...runtimeEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached === true,
  });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 30, msg: line });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const bot: BotProcess = {
    pid: child.pid ?? 0,
    logs,
    get stderr() {
      return stderr;
    },
    exited,
    waitForLog(probe, timeoutMs = 10_000) {
      return new Promise((resolveLine, reject) => {
        const check = () => {
          const found = logs.find(probe);
          if (!found) return;
          cleanup();
          resolveLine(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no such log line within ${timeoutMs} ms; last lines:\n${logs
                .slice(-10)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  return bot;
}

/** Starts a managed thread with /chat and a first prompt; resolves with the thread id once the prompt was answered. */
/** `/chat` in `channelId` (default: the default guild's text channel); resolves with the new thread once answered. */
export async function startThread(
  world: World,
  userId: string,
  prompt: string,
  channelId: string = world.discord.channelId,
): Promise<string> {
  const { discord } = world;
  const before = new Set(discord.threadsOf(channelId).map((t) => t.id));
  await discord.runCommand({ channelId, userId, name: 'chat', options: { prompt } }).response();
  const thread = await discord.waitFor(() => discord.threadsOf(channelId).find((t) => !before.has(t.id)), {
    message: 'no thread was created',
  });
  await waitForReplies(world, thread.id, 1);
  return thread.id;
}

export function isStreaming(message: MessageView): boolean {
  return JSON.stringify(message.components).includes('"stop:');
}

/** A message the bot posts that is not a reply: the echo of a prompt, a ballot (live or decided), a notice. */
function isBotChrome(message: MessageView): boolean {
  return /^(💬 \*\*|⏳|🗳|✅|🚫 \*\*This vote|🚫 The vote|🌿|🗜️)/u.test(message.text);
}

/**
 * A message as a reader reads it: `content` is its whole visible text (content, embeds, and the text displays of a
 * components v2 message such as the live ballot), so tests read every kind of message the same way.
 */
export function asRead(message: MessageView): MessageView {
  return { ...message, content: message.text };
}

/** The live ballots' alternatives in a thread, in order: one view per alternative (see {@link alternativesIn}). */
export function alternativesIn(world: World, threadId: string): MessageView[] {
  return world.discord
    .messages(threadId)
    .filter((m) => m.authorId === world.discord.botUserId && !m.ephemeral)
    .flatMap((m) => alternativesOf(m));
}

/**
 * The alternatives a live ballot shows, each as a message of its own would have read: `content` is its text display
 * ("**B** · style", its text, its usage line), `components` its own buttons (vote, "Read B in full", Stop, Retry);
 * `id` is the ballot message's. Any other message has none.
 */
export function alternativesOf(message: MessageView): MessageView[] {
  const containers = (message.components as { type: number; components?: unknown[] }[]).filter(
    (c) => c.type === 17,
  );
  return containers.flatMap((container) => {
    const children = (container.components ?? []) as { type: number; content?: string }[];
    const text = children.find((c) => c.type === 10)?.content ?? '';
    // "**B** · style" or, blind, "**B**" alone on its line; "**A** is the reply it already had" was not generated.
    if (!/^\*\*[A-E]\*\*( · |\n)/.test(text)) return [];
    return [{ ...message, content: text, text, components: children.filter((c) => c.type === 1) }];
  });
}

/**
 * The bot's replies in a thread as a reader sees them: a reply starts with a bot message that answers (references) a
 * message or follows someone else's, and goes on in the bot's messages right after it.
 */
export function replies(
  world: World,
  threadId: string,
): { messages: MessageView[]; text: string; streaming: boolean }[] {
  const out: { messages: MessageView[]; text: string; streaming: boolean }[] = [];
  let current: MessageView[] | undefined;
  let previousFromBot = false;
  for (const message of world.discord.messages(threadId).filter((m) => !m.ephemeral)) {
    const fromBot = message.authorId === world.discord.botUserId;
    if (!fromBot || isBotChrome(message)) {
      current = undefined;
    } else if (message.referenceId || !previousFromBot || !current) {
      current = [message];
      out.push({ messages: current, text: '', streaming: false });
    } else {
      current.push(message);
    }
    previousFromBot = fromBot;
  }
  for (const reply of out) {
    reply.text = reply.messages.map((m) => m.content).join('\n');
    reply.streaming = reply.messages.some(isStreaming);
  }
  return out;
}

export async function waitForReplies(world: World, threadId: string, count: number, timeoutMs = 30_000) {
  return world.discord.waitFor(
    () => {
      const found = replies(world, threadId);
      return found.length >= count && !found.some((r) => r.streaming) ? found : undefined;
    },
    { timeoutMs, message: `expected ${count} finished replies in thread ${threadId}` },
  );
}

/** The bot's default model, as the emulator names it in its replies. */
export const MODEL = 'gpt-4.1-mini';

/** One message of a history, as the OpenAI emulator's `replyFor` takes it. */
export interface Said {
  role: 'user' | 'assistant';
  text: string;
}
export const user = (text: string): Said => ({ role: 'user', text });
export const assistant = (text: string): Said => ({ role: 'assistant', text });

/** The finished reply that says it answers `said` (the message as the model saw it, "alice: hi"). */
export function replyTo(world: World, threadId: string, said: string, timeoutMs = 30_000) {
  return world.discord.waitFor(
    () => replies(world, threadId).find((r) => !r.streaming && r.text.includes(`to "${said}`)),
    { timeoutMs, message: `no finished reply to "${said}" in thread ${threadId}` },
  );
}

/** The texts of the messages in a conversation at the OpenAI emulator, in order. */
export function conversationTexts(world: World, conversationId: string): string[] {
  const items = (world.openai.conversation(conversationId)?.items ?? []) as {
    type: string;
    content?: { text?: string }[];
  }[];
  return items
    .filter((i) => i.type === 'message')
    .map((i) => i.content?.map((c) => c.text ?? '').join('') ?? '');
}

/** The texts of the conversation (at the OpenAI emulator) that holds a message containing `needle`. */
export function conversationHolding(world: World, needle: string): string[] {
  const found = world.openai
    .conversationIds()
    .map((id) => conversationTexts(world, id))
    .filter((texts) => texts.some((t) => t.includes(needle)));
  if (found.length !== 1) throw new Error(`${found.length} conversations hold "${needle}"`);
  return found[0]!;
}

/** The custom_ids of a message's buttons, by label prefix ("A", "Close vote", ...). */
export function buttonIds(message: MessageView): { label: string; customId: string; disabled: boolean }[] {
  type Node = { type: number; label?: string; custom_id?: string; disabled?: boolean; components?: Node[] };
  // Buttons sit in rows, and with components v2 rows sit in containers: every button, in the order people see them.
  const walk = (nodes: Node[]): Node[] =>
    nodes.flatMap((node) => (node.type === 2 ? [node] : walk(node.components ?? [])));
  return walk(message.components as Node[]).map((b) => ({
    label: b.label ?? '',
    customId: b.custom_id ?? '',
    disabled: b.disabled === true,
  }));
}

export function buttonId(message: MessageView, labelStart: string): string {
  const found = buttonIds(message).find((b) => b.label.startsWith(labelStart));
  if (!found) throw new Error(`no button "${labelStart}" on message: ${JSON.stringify(message.components)}`);
  return found.customId;
}

/**
 * The ballot (latest) in a thread once its vote is open or decided and `probe` accepts it, as read (`content` is its
 * whole text: the ballot's, then each alternative's).
 */
export function waitForBallot(
  world: World,
  threadId: string,
  probe: (ballot: MessageView) => boolean = () => true,
  timeoutMs = 30_000,
) {
  return world.discord.waitFor(
    () =>
      world.discord
        .messages(threadId)
        .filter(
          (m) =>
            m.authorId === world.discord.botUserId &&
            !m.ephemeral &&
            /^(🗳|✅|🚫 \*\*This vote)/u.test(m.text),
        )
        .map(asRead)
        .findLast(probe),
    { timeoutMs, message: `no matching ballot in thread ${threadId}` },
  );
}

/** Runs /alternatives and resolves with the ballot it opens. */
export async function openVote(
  world: World,
  threadId: string,
  userId: string,
  options: Record<string, string | number | boolean>,
): Promise<MessageView> {
  await command(world, { channelId: threadId, userId, name: 'alternatives', options });
  return waitForBallot(world, threadId, (m) => m.content.startsWith('🗳'));
}

/** Clicks the button whose label starts with `label`; resolves with what the clicker then sees. */
export function click(
  world: World,
  message: MessageView,
  label: string,
  userId: string,
): Promise<MessageView> {
  return world.discord
    .clickButton({ messageId: message.id, customId: buttonId(message, label), userId })
    .response();
}

/** Runs a slash command and resolves with the text the invoker sees (content, or the embeds' text). */
export async function command(
  world: World,
  c: {
    channelId: string;
    userId: string;
    name: string;
    subcommand?: string;
    options?: Record<string, string | number | boolean>;
  },
): Promise<string> {
  const response = await world.discord.runCommand(c).response({ timeoutMs: 30_000 });
  return [response.content, ...response.embeds.map((e) => JSON.stringify(e))].join('\n');
}

/**
 * The pids of the bot processes this process started for `world` (its children whose working directory is the
 * world's directory), read from /proc; empty where /proc is not available.
 */
export function botPids(world: World): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const dir = realpathSync(world.dir);
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readlinkSync(`/proc/${entry}/cwd`) === dir) pids.push(Number(entry));
    } catch {
      // The process ended meanwhile, or is not ours to read.
    }
  }
  return pids;
}

/** Peak resident set size (VmHWM) of a live process in kB, from /proc; undefined when it cannot be read. */
export function peakMemoryKb(pid: number): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m);
    return match?.[1] ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

// ---- several processes (scale-out) ----

/** The entry point of `npm run start:sharded` (spawnBot(env, cwd, SHARDED_ENTRY) runs it). */
export const SHARDED_ENTRY = resolve(import.meta.dirname, '../../src/sharded.ts');

/** Starts one more bot process and resolves with it and the gateway session it identified on (for `via`). */
export async function startBotWithSession(
  world: World,
  extraEnv: Record<string, string> = {},
): Promise<{ bot: BotProcess; session: string }> {
  const before = new Set(world.discord.gatewaySessions().map((s) => s.id));
  const bot = await world.startBot(extraEnv);
  const session = await world.discord.waitFor(
    () => world.discord.gatewaySessions().find((s) => !before.has(s.id) && s.connected),
    { message: 'the new bot process has a gateway session' },
  );
  return { bot, session: session.id };
}

/** startThread, with the /chat delivered to one gateway session only. */
export async function startThreadVia(
  world: World,
  userId: string,
  prompt: string,
  via: string,
): Promise<string> {
  const { discord } = world;
  const before = new Set(discord.threadsOf(discord.channelId).map((t) => t.id));
  await discord
    .runCommand({ channelId: discord.channelId, userId, name: 'chat', options: { prompt }, via })
    .response();
  const thread = await discord.waitFor(
    () => discord.threadsOf(discord.channelId).find((t) => !before.has(t.id)),
    { message: 'no thread was created' },
  );
  await waitForReplies(world, thread.id, 1);
  return thread.id;
}

/** Responses on one conversation that ran at the same time at the OpenAI emulator (there must be none). */
export function overlappingTurns(world: World): { conversationId: string; startedAt: number[] }[] {
  const turns = world.openai.requests.filter((r) => r.route === 'POST /v1/responses' && r.conversationId);
  const found: { conversationId: string; startedAt: number[] }[] = [];
  for (const [i, a] of turns.entries()) {
    for (const b of turns.slice(i + 1)) {
      if (a.conversationId !== b.conversationId) continue;
      const aEnd = a.endedAt ?? Number.POSITIVE_INFINITY;
      const bEnd = b.endedAt ?? Number.POSITIVE_INFINITY;
      if (a.startedAt < bEnd && b.startedAt < aEnd)
        found.push({ conversationId: a.conversationId!, startedAt: [a.startedAt, b.startedAt] });
    }
  }
  return found;
}

/** Log lines at error level or above, and any line about lock trouble (Redis lock, or a conversation locked). */
export function lockTroubleAndErrors(bot: BotProcess): LogLine[] {
  return bot.logs.filter(
    (l) =>
      l.level >= 50 ||
      l.msg === 'redis lock trouble' ||
      /conversation_locked|another process|The lock on .* was lost/i.test(JSON.stringify(l)),
  );
}
