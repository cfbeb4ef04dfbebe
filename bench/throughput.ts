/**
 * Part 3, throughput: 100 managed threads, 10 messages posted in each at once (1000 messages in well under a second),
 * the model at zero latency. Discord's per-channel limits are raised for this part: at Discord's own 5 messages per
 * 5 s per channel, ten replies in a thread take ten seconds whatever the bot does.
 *
 * Bot-side overhead of a turn: from the moment the turn could start (its message was posted, and the previous reply
 * in the thread had finished: turns of a thread run one at a time) to its reply finished in Discord, minus the time
 * the OpenAI emulator spent on that turn's requests. The emulators run in the benchmark's own process and share the
 * machine's cores with the bot, so this is an upper bound of what the bot itself costs.
 */

import { botPids, createWorld, peakMemoryKb } from '../test/e2e/harness.ts';
import type { MessageView } from '../test/emulators/discord/index.ts';
import type { RecordedRequest } from '../test/emulators/openai/index.ts';
import {
  finishedReplies,
  lastWrite,
  NO_LATENCY,
  now,
  ownCpuMs,
  percentile,
  poll,
  processCpuMs,
  RAISED_DISCORD_LIMITS,
  wall,
} from './common.ts';

export const THREADS = 100;
export const MESSAGES_PER_THREAD = 10;

export interface ThroughputResult {
  threads: number;
  messagesPerThread: number;
  turns: number;
  wallMs: number;
  turnsPerSecond: number;
  /** One thread alone, one message at a time. */
  soloOverheadP50Ms: number;
  soloOverheadP99Ms: number;
  /** CPU time of the bot process during the load, per turn. */
  botCpuMsPerTurn: number | undefined;
  /** CPU time of the benchmark process (both emulators) during the load, per turn. */
  emulatorsCpuMsPerTurn: number;
  /** Under load: 100 threads with ten messages each posted at once. */
  overheadP50Ms: number;
  overheadP99Ms: number;
  emulatorP50Ms: number;
  peakMemoryMb: number | undefined;
  memoryAfterStartMb: number | undefined;
  answered: number;
  inOrder: boolean;
  problems: string[];
  /** Discord REST requests of the bot during the load, by route. */
  discordRoutes: Record<string, number>;
  discordRequestsPerSecond: number;
  rateLimited: number;
}

export async function runThroughput(log: (line: string) => void): Promise<ThroughputResult> {
  const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
  try {
    await world.startBot({ LOG_LEVEL: 'info' });
    const pid = botPids(world)[0];
    const memoryAfterStart = pid === undefined ? undefined : peakMemoryKb(pid);
    world.openai.setLatency(NO_LATENCY);
    const users = Array.from({ length: 10 }, (_, i) => world.discord.createUser({ username: `user${i}` }));

    const threads: { threadId: string; user: { id: string; username: string } }[] = [];
    for (let i = 0; i < THREADS; i++) {
      const user = users[i % users.length]!;
      const threadId = world.discord.createThread({
        parentId: world.discord.channelId,
        name: `load ${i}`,
        ownerId: user.id,
      });
      threads.push({ threadId, user });
    }
    // /chat inside each thread makes it managed (no first prompt: the ten messages are all there is).
    await Promise.all(
      threads.map(({ threadId, user }) =>
        world.discord
          .runCommand({ channelId: threadId, userId: user.id, name: 'chat' })
          .response({ timeoutMs: 30_000 }),
      ),
    );

    // Unloaded first: one more thread, ten messages one after the other (each posted once the previous is answered).
    const solo = world.discord.createThread({
      parentId: world.discord.channelId,
      name: 'solo',
      ownerId: users[0]!.id,
    });
    await world.discord.runCommand({ channelId: solo, userId: users[0]!.id, name: 'chat' }).response();
    const soloOverheads: number[] = [];
    for (let k = 1; k <= MESSAGES_PER_THREAD; k++) {
      const from = now();
      const question = world.discord.postMessage(solo, users[0]!.id, `solo m${k}`);
      const reply = await poll(
        () => finishedReplies(world, solo).find((m) => m.referenceId === question.id),
        {
          intervalMs: 2,
          message: 'the solo reply',
        },
      );
      const turns = indexTurns(world.openai.requests);
      soloOverheads.push(
        lastWrite(reply) -
          from -
          emulatorTime(turns, `${users[0]!.username}: solo m${k}`, from, lastWrite(reply)),
      );
    }

    const posted = new Map<string, number>();
    const discordBefore = world.discord.requests.length;
    const botCpuBefore = pid === undefined ? undefined : processCpuMs(pid);
    const ownCpuBefore = ownCpuMs();
    const start = now();
    for (let k = 1; k <= MESSAGES_PER_THREAD; k++) {
      for (const [i, { threadId, user }] of threads.entries()) {
        const message = world.discord.postMessage(threadId, user.id, `t${i} m${k}`);
        posted.set(message.id, now());
      }
    }
    const total = THREADS * MESSAGES_PER_THREAD;
    log(`  posted ${total} messages in ${(now() - start).toFixed(0)} ms`);
    await poll(
      () => threads.reduce((sum, { threadId }) => sum + finishedReplies(world, threadId).length, 0) >= total,
      { timeoutMs: 240_000, intervalMs: 250, message: `${total} replies` },
    );
    const peak = pid === undefined ? undefined : peakMemoryKb(pid);
    const botCpuAfter = pid === undefined ? undefined : processCpuMs(pid);
    const ownCpu = ownCpuMs() - ownCpuBefore;
    const discordRoutes: Record<string, number> = {};
    for (const r of world.discord.requests.slice(discordBefore))
      discordRoutes[r.route] = (discordRoutes[r.route] ?? 0) + 1;

    const problems: string[] = [];
    const overheads: number[] = [];
    const emulatorTimes: number[] = [];
    let answered = 0;
    let end = start;
    const turnRequests = indexTurns(world.openai.requests);
    for (const [i, { threadId, user }] of threads.entries()) {
      const asked = world.discord.messages(threadId).filter((m) => m.authorId === user.id);
      const replies = finishedReplies(world, threadId).sort((a, b) => a.createdAt - b.createdAt);
      answered += replies.length;
      let previousEnd = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < asked.length; k++) {
        const question = asked[k]!;
        const reply: MessageView | undefined = replies[k];
        const expected = `reply ${k + 1} to "${user.username}: t${i} m${k + 1}"`;
        if (!reply || reply.referenceId !== question.id || !reply.content.includes(expected)) {
          problems.push(`thread ${i} message ${k + 1}: ${reply ? reply.content.slice(0, 80) : 'no reply'}`);
          continue;
        }
        const finished = lastWrite(reply);
        end = Math.max(end, finished);
        const from = Math.max(posted.get(question.id) ?? finished, previousEnd);
        previousEnd = finished;
        const emulatorMs = emulatorTime(turnRequests, `${user.username}: t${i} m${k + 1}`, from, finished);
        emulatorTimes.push(emulatorMs);
        overheads.push(finished - from - emulatorMs);
      }
    }
    const wallMs = end - start;
    return {
      threads: THREADS,
      messagesPerThread: MESSAGES_PER_THREAD,
      turns: total,
      wallMs,
      turnsPerSecond: (total / wallMs) * 1000,
      soloOverheadP50Ms: percentile(soloOverheads, 50),
      soloOverheadP99Ms: percentile(soloOverheads, 99),
      botCpuMsPerTurn:
        botCpuAfter === undefined || botCpuBefore === undefined
          ? undefined
          : (botCpuAfter - botCpuBefore) / total,
      emulatorsCpuMsPerTurn: ownCpu / total,
      overheadP50Ms: percentile(overheads, 50),
      overheadP99Ms: percentile(overheads, 99),
      emulatorP50Ms: percentile(emulatorTimes, 50),
      peakMemoryMb: peak === undefined ? undefined : peak / 1024,
      memoryAfterStartMb: memoryAfterStart === undefined ? undefined : memoryAfterStart / 1024,
      answered,
      inOrder: problems.length === 0,
      problems: problems.slice(0, 10),
      discordRoutes,
      discordRequestsPerSecond: ((world.discord.requests.length - discordBefore) / wallMs) * 1000,
      rateLimited: world.discord.requests.filter((r) => r.status === 429).length,
    };
  } finally {
    await world.close();
  }
}

/**
 * The OpenAI emulator's requests of each turn's conversation, by the text of the message the turn answers (the
 * conversations backend sends it as the generation's only input item).
 */
function indexTurns(requests: readonly RecordedRequest[]): Map<string, RecordedRequest[]> {
  const byConversation = new Map<string, RecordedRequest[]>();
  for (const r of requests) {
    if (!r.conversationId) continue;
    const list = byConversation.get(r.conversationId) ?? [];
    list.push(r);
    byConversation.set(r.conversationId, list);
  }
  const out = new Map<string, RecordedRequest[]>();
  for (const r of requests) {
    if (r.route !== 'POST /v1/responses' || !r.conversationId) continue;
    const input = (r.body as { input?: { content?: unknown }[] }).input;
    const text = input?.[0]?.content;
    if (typeof text === 'string') out.set(text, byConversation.get(r.conversationId) ?? []);
  }
  return out;
}

/**
 * Time the emulator spent on one turn: the requests on the turn's conversation that started while the turn ran (the
 * conversation's creation on a first turn included).
 */
function emulatorTime(
  turnRequests: Map<string, RecordedRequest[]>,
  text: string,
  from: number,
  to: number,
): number {
  return (turnRequests.get(text) ?? [])
    .filter((r) => wall(r.startedAt) >= from - 1 && wall(r.startedAt) <= to)
    .reduce((sum, r) => sum + ((r.endedAt ?? r.startedAt) - r.startedAt), 0);
}
