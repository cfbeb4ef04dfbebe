/** Shared helpers of the benchmarks: clocks, waiting, reading the emulators' logs, statistics. */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { alternativesIn, type World } from '../test/e2e/harness.ts';
import type { MessageView } from '../test/emulators/discord/index.ts';
import type { RecordedRequest } from '../test/emulators/openai/index.ts';

/**
 * Discord's per-channel limits raised far out of the way, for the parts that build long histories or run many threads
 * (the default is Discord's own: 5 message creates and 5 edits per 5 s per channel).
 */
export const RAISED_DISCORD_LIMITS = {
  messageCreate: { limit: 100_000, windowMs: 1000 },
  messageEdit: { limit: 100_000, windowMs: 1000 },
};

/** The chat pace of part 1: 400 ms to the first token, then 50 tokens per second. */
export const REALISTIC_PACE = { firstTokenMs: 400, tokensPerSecond: 50 };
export const NO_LATENCY = { firstTokenMs: 0, tokensPerSecond: Number.POSITIVE_INFINITY };

/** Wall-clock milliseconds with sub-millisecond resolution (the Discord emulator stamps with Date.now()). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** The OpenAI emulator stamps requests with performance.now(): as wall-clock milliseconds. */
export function wall(perfMs: number): number {
  return performance.timeOrigin + perfMs;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` every `intervalMs` until it returns a value. Cheaper than the emulator's waitFor (which runs the probe
 * on every change of its state) when thousands of messages are in flight.
 */
export async function poll<T>(
  probe: () => T | undefined | null | false,
  { timeoutMs = 60_000, intervalMs = 25, message = 'condition not met' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`);
    await sleep(intervalMs);
  }
}

/** True while a reply still streams: its first message carries the Stop button. */
export function streaming(message: MessageView): boolean {
  return JSON.stringify(message.components).includes('"stop:');
}

/** When a message last changed in Discord (its final state was in place). */
export function lastWrite(message: MessageView): number {
  return message.editedAt ?? message.createdAt;
}

/** The bot's finished replies in a thread: bot messages that answer (reference) a message and no longer stream. */
export function finishedReplies(world: World, threadId: string): MessageView[] {
  return world.discord
    .messages(threadId)
    .filter(
      (m) =>
        m.authorId === world.discord.botUserId &&
        m.referenceId !== undefined &&
        !m.ephemeral &&
        !streaming(m),
    );
}

/** The alternatives shown in a thread's live ballots ("**B** · style"), in order, one view each. */
export function alternativeMessages(world: World, threadId: string): MessageView[] {
  return alternativesIn(world, threadId);
}

/** Posts `texts` into a thread at once (people typing fast) and waits until the bot answered `total` messages. */
export async function postAndWait(
  world: World,
  threadId: string,
  userId: string,
  texts: string[],
  total: number,
  timeoutMs = 120_000,
): Promise<MessageView[]> {
  for (const text of texts) world.discord.postMessage(threadId, userId, text);
  return poll(
    () => {
      const done = finishedReplies(world, threadId);
      return done.length >= total ? done : undefined;
    },
    { timeoutMs, intervalMs: 50, message: `${total} replies in thread ${threadId}` },
  );
}

/** Provider calls and request bytes of a slice of the OpenAI emulator's log. */
export function providerCost(requests: readonly RecordedRequest[]): {
  calls: number;
  bytes: number;
  routes: Record<string, number>;
} {
  const routes: Record<string, number> = {};
  for (const r of requests) routes[r.route] = (routes[r.route] ?? 0) + 1;
  return { calls: requests.length, bytes: requests.reduce((sum, r) => sum + r.bytes, 0), routes };
}

/** The p-th percentile (0..100) by the nearest-rank method. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export const round = (value: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

export function kilobytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} kB`;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc; undefined when it cannot be read. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** CPU time this process (the benchmark and both emulators) has used so far, in ms. */
export function ownCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}
