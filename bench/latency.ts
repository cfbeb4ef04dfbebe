/**
 * Part 1, alternatives latency, and part 4, the Discord budget of the streamed replies it produced.
 *
 * One bot at Discord's own limits (the emulator's defaults: 5 message creates and 5 edits per 5 s per channel). Five
 * threads with the same two turns of history; then, at a realistic pace, T(1) is one normal chat turn and T(N) one
 * /alternatives with N = 2..5, each in its own thread so that each starts with a fresh rate-limit window. The naive
 * baseline runs afterwards against the same emulator at the same pace.
 */

import { createWorld, startThread, waitForReplies } from '../test/e2e/harness.ts';
import type { MessageView } from '../test/emulators/discord/index.ts';
import { ask, copyConversation, listAsInput, naiveAlternatives, naiveClient } from './baseline.ts';
import {
  alternativeMessages,
  finishedReplies,
  lastWrite,
  mean,
  NO_LATENCY,
  now,
  poll,
  REALISTIC_PACE,
  sleep,
  streaming,
  wall,
} from './common.ts';

export const REPLY_TOKENS = 200;
const PROMPT = `!tokens ${REPLY_TOKENS}`;

export interface LatencyRow {
  n: number;
  /** Interaction (or message) to the last alternative finished in Discord. */
  visibleMs: number;
  /** Interaction (or message) to the last token of the last alternative at the provider. */
  modelMs: number;
  /** Interaction to the ballot open (N >= 2). */
  ballotMs: number | undefined;
  /**
   * Per alternative (for T(1), the reply), in the order they showed: first words visible in Discord, in ms after the
   * first token of the generation that started in the same place in order (the emulator's pace: start + 400 ms).
   */
  firstWordsMs: number[];
  baselineMs: number;
}

export interface BudgetResult {
  streamedReplies: number;
  editsPerReplyMean: number;
  editsPerReplyMax: number;
  editsSingleReply: number;
  editsPerThreadMax: number;
  /** The highest number of edits of one thread within any 5 s window (Discord allows 5). */
  editsIn5sMax: number;
  rateLimited: number;
  discordRequests: number;
  longestGapMs: number;
  longestGapSingleReplyMs: number;
  /** The longest wait from a command (or message) to the first words of a reply or alternative in Discord. */
  firstVisibleMsMax: number;
}

export interface LatencyResult {
  rows: LatencyRow[];
  budget: BudgetResult;
}

interface Streamed {
  threadId: string;
  messages: MessageView[];
  start: number;
  single: boolean;
  /** When each alternative (or the reply) first showed words, wall ms. */
  firstWords: number[];
}

/** Its text below the header, without the cursor: empty (or "…") until its first words are shown. */
function wordsOf(alternative: MessageView): string {
  const words = alternative.content.split('\n').slice(1).join('\n').replace('▌', '').trim();
  return words === '…' ? '' : words;
}

export async function runLatency(log: (line: string) => void): Promise<LatencyResult> {
  const world = await createWorld();
  try {
    await world.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', VOTE_SECONDS: '3600', LOG_LEVEL: 'info' });
    const alice = world.discord.createUser({ username: 'alice' });
    const bob = world.discord.createUser({ username: 'bob' });
    world.openai.setLatency(NO_LATENCY);

    const threads: string[] = [];
    for (let n = 1; n <= 5; n++) {
      const threadId = await startThread(world, alice.id, 'plan a weekend in Porto');
      world.discord.postMessage(threadId, bob.id, 'what about food?');
      await waitForReplies(world, threadId, 2);
      threads.push(threadId);
    }
    const sourceId = world.openai.conversationIds()[0]!;
    const client = naiveClient(world);
    const history = await listAsInput(client, sourceId);
    if (history.length !== 4) throw new Error(`expected 4 items of history, found ${history.length}`);
    // Every thread gets a fresh window of Discord's per-channel limits before it is measured.
    await sleep(5500);
    world.openai.setLatency(REALISTIC_PACE);
    const discordStart = world.discord.requests.length;
    const streamed: Streamed[] = [];
    const rows: Omit<LatencyRow, 'baselineMs'>[] = [];

    // T(1): one normal chat turn at the same pace.
    {
      const threadId = threads[0]!;
      const before = world.openai.requests.length;
      const start = now();
      const posted = world.discord.postMessage(threadId, alice.id, PROMPT);
      const reply = await poll(
        () => finishedReplies(world, threadId).find((m) => m.referenceId === posted.id),
        {
          message: 'the T(1) reply',
        },
      );
      const generation = world.openai.requests.slice(before).find((r) => r.route === 'POST /v1/responses')!;
      rows.push({
        n: 1,
        visibleMs: lastWrite(reply) - start,
        modelMs: wall(generation.endedAt!) - start,
        ballotMs: undefined,
        firstWordsMs: [reply.createdAt - (wall(generation.startedAt) + REALISTIC_PACE.firstTokenMs)],
      });
      streamed.push({ threadId, messages: [reply], start, single: true, firstWords: [reply.createdAt] });
      log(`  T(1) ${((lastWrite(reply) - start) / 1000).toFixed(2)} s`);
    }

    for (let n = 2; n <= 5; n++) {
      const threadId = threads[n - 1]!;
      const before = world.openai.requests.length;
      // When each alternative first shows words: the time of the edit that showed them, read as soon as it landed.
      const firstWords = new Map<string, number>();
      const watch = setInterval(() => {
        for (const alternative of alternativeMessages(world, threadId))
          if (!firstWords.has(alternative.content.slice(0, 5)) && wordsOf(alternative))
            firstWords.set(alternative.content.slice(0, 5), lastWrite(alternative));
      }, 5);
      const start = now();
      const handle = world.discord.runCommand({
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { count: n, prompt: PROMPT },
      });
      const shown = await poll(
        () => {
          const found = alternativeMessages(world, threadId);
          return found.length === n && found.every((m) => !streaming(m) && /-# \d+ in/.test(m.content))
            ? found
            : undefined;
        },
        { message: `${n} finished alternatives` },
      ).finally(() => clearInterval(watch));
      const ballot = await handle.response({ timeoutMs: 60_000 });
      const generations = world.openai.requests
        .slice(before)
        .filter((r) => r.route === 'POST /v1/responses' && r.status === 200);
      if (generations.length !== n) throw new Error(`expected ${n} generations, saw ${generations.length}`);
      const ballotMessage = world.discord
        .messages(threadId)
        .find((m) => m.authorId === world.discord.botUserId && m.text.startsWith('🗳'));
      // Alternatives may start one after another (the first one's first token lets the others share its prompt
      // cache): the k-th alternative to show words is measured from the k-th generation's first token.
      const firstTokens = generations
        .map((g) => wall(g.startedAt) + REALISTIC_PACE.firstTokenMs)
        .sort((a, b) => a - b);
      if (firstWords.size !== n)
        throw new Error(`saw the first words of ${firstWords.size} of ${n} alternatives`);
      rows.push({
        n,
        visibleMs: Math.max(...shown.map(lastWrite)) - start,
        modelMs: Math.max(...generations.map((g) => wall(g.endedAt!))) - start,
        ballotMs: ballotMessage ? lastWrite(ballotMessage) - start : undefined,
        firstWordsMs: [...firstWords.values()].sort((a, b) => a - b).map((t, k) => t - firstTokens[k]!),
      });
      // The alternatives of a fork are one message (the live ballot): its edits are counted once.
      const messages = [...new Map(shown.map((m) => [m.id, world.discord.message(m.id) ?? m])).values()];
      streamed.push({ threadId, messages, start, single: false, firstWords: [...firstWords.values()] });
      log(
        `  T(${n}) ${((Math.max(...shown.map(lastWrite)) - start) / 1000).toFixed(2)} s, first words ${rows
          .at(-1)!
          .firstWordsMs.map((ms) => (ms / 1000).toFixed(2))
          .join(' · ')} s after the first token (${ballot.content})`,
      );
    }

    const budget = discordBudget(world.discord.requests.slice(discordStart), streamed);
    budget.rateLimited = world.discord.requests.filter((r) => r.status === 429).length;
    budget.discordRequests = world.discord.requests.length;

    // The naive baseline, same emulator, same pace.
    const baseline: number[] = [];
    {
      const copy = await copyConversation(client, history);
      const start = now();
      await ask(client, copy, `alice: ${PROMPT}`);
      baseline.push(now() - start);
    }
    const source = await copyConversation(client, history);
    for (let n = 2; n <= 5; n++) {
      const { ms, texts } = await naiveAlternatives(client, source, n, `alice: ${PROMPT}`);
      if (texts.length !== n) throw new Error('the baseline lost an alternative');
      baseline.push(ms);
      log(`  baseline T(${n}) ${(ms / 1000).toFixed(2)} s`);
    }
    return { rows: rows.map((row, i) => ({ ...row, baselineMs: baseline[i]! })), budget };
  } finally {
    await world.close();
  }
}

function discordBudget(
  requests: readonly { route: string; path: string; at: number; status: number }[],
  streamed: Streamed[],
): BudgetResult {
  const edits = requests.filter((r) => r.route === 'PATCH /channels/:channel_id/messages/:message_id');
  const editsOf = (message: MessageView) => edits.filter((r) => r.path.endsWith(`/messages/${message.id}`));
  const perReply: number[] = [];
  const gaps: number[] = [];
  const singleGaps: number[] = [];
  const firstVisible: number[] = [];
  let singleEdits = 0;
  for (const reply of streamed) {
    for (const message of reply.messages) {
      const own = editsOf(message);
      perReply.push(own.length);
      if (reply.single) singleEdits = own.length;
      const times = [message.createdAt, ...own.map((r) => r.at)].sort((a, b) => a - b);
      const gap = Math.max(0, ...times.slice(1).map((t, i) => t - times[i]!));
      gaps.push(gap);
      if (reply.single) singleGaps.push(gap);
    }
    firstVisible.push(...reply.firstWords.map((t) => t - reply.start));
  }
  const perThread = streamed.map((reply) =>
    edits.filter((r) => r.path.startsWith(`/channels/${reply.threadId}/`)),
  );
  const in5s = perThread.map((list) =>
    Math.max(0, ...list.map((r) => list.filter((o) => o.at >= r.at && o.at < r.at + 5000).length)),
  );
  return {
    streamedReplies: perReply.length,
    editsPerReplyMean: mean(perReply),
    editsPerReplyMax: Math.max(...perReply),
    editsSingleReply: singleEdits,
    editsPerThreadMax: Math.max(...perThread.map((l) => l.length)),
    editsIn5sMax: Math.max(...in5s),
    rateLimited: 0,
    discordRequests: 0,
    longestGapMs: Math.max(...gaps),
    longestGapSingleReplyMs: Math.max(...singleGaps),
    firstVisibleMsMax: Math.max(...firstVisible),
  };
}
