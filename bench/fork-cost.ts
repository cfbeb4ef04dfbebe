/**
 * Part 2, fork cost against history length: provider calls, request bytes and wall time of one /alternatives
 * (count 3, with a prompt) on threads of 10, 100 and 1000 items, and of the naive fork of the same conversation.
 * Then (runForkCaching) the billed input of a fork with OpenAI's prompt caching, against one turn's.
 *
 * The histories are built through the bot, honestly: every item is a message someone posted in the thread and the
 * reply the bot streamed to it (5, 50 and 500 turns). Discord's per-channel limits are raised for this part, or the
 * 1000 messages the bot posts in one thread would take 1000 s at 5 per 5 s.
 */
import { DEFAULT_PRICES } from '../src/core/budgets.ts';
import {
  buttonId,
  command,
  createWorld,
  MODEL,
  openVote,
  startThread,
  type World,
  waitForBallot,
  waitForReplies,
} from '../test/e2e/harness.ts';
import type { RecordedRequest } from '../test/emulators/openai/index.ts';
import { naiveAlternatives, naiveClient } from './baseline.ts';
import {
  alternativeMessages,
  lastWrite,
  NO_LATENCY,
  now,
  poll,
  postAndWait,
  providerCost,
  RAISED_DISCORD_LIMITS,
  REALISTIC_PACE,
  streaming,
} from './common.ts';

export const FORK_COUNT = 3;
export const HISTORY_SIZES = [10, 100, 1000] as const;
const PROMPT = 'one more idea?';

const REPETITIONS = 3;

interface Cost {
  calls: number;
  bytes: number;
  ms: number;
  routes: Record<string, number>;
}

export interface ForkCostRow {
  items: number;
  buildMs: number;
  /** Median wall time of the repetitions; calls and bytes are the same in each. */
  ours: Cost;
  /** Closing the vote: the winner extends the parent's conversation. */
  close: Omit<Cost, 'ms'>;
  baseline: Cost;
  repetitions: number;
}

/** The run of median wall time (calls and bytes do not vary between repetitions). */
function median(runs: Cost[]): Cost {
  return [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)]!;
}

export async function runForkCost(log: (line: string) => void): Promise<ForkCostRow[]> {
  const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
  try {
    await world.startBot({ ALTERNATIVES_COOLDOWN_SECONDS: '0', VOTE_SECONDS: '3600', LOG_LEVEL: 'info' });
    const alice = world.discord.createUser({ username: 'alice' });
    const mod = world.discord.createUser({ username: 'mod', manageThreads: true });
    world.openai.setLatency(NO_LATENCY);

    const threads: { items: number; threadId: string }[] = [];
    for (const items of HISTORY_SIZES) {
      threads.push({ items, threadId: await startThread(world, alice.id, `history of ${items} items`) });
    }
    const built = now();
    // The three histories grow at once (one turn at a time in each thread, as the bot answers them).
    await Promise.all(
      threads.map(({ items, threadId }) =>
        postAndWait(
          world,
          threadId,
          alice.id,
          Array.from({ length: items / 2 - 1 }, (_, i) => `message ${i + 2} of ${items / 2}`),
          items / 2,
          240_000,
        ),
      ),
    );
    const buildMs = now() - built;
    log(
      `  built histories of ${HISTORY_SIZES.join(', ')} items through the bot in ${(buildMs / 1000).toFixed(1)} s`,
    );

    const client = naiveClient(world);
    const rows: ForkCostRow[] = [];
    for (const { items, threadId } of threads) {
      const conversationId = world.openai
        .conversationIds()
        .find((id) =>
          JSON.stringify(world.openai.conversation(id)?.items ?? []).includes(`history of ${items} items`),
        );
      const held = conversationId ? world.openai.conversation(conversationId)!.items.length : 0;
      if (!conversationId || held !== items)
        throw new Error(`thread of ${items} items: its conversation holds ${held}`);

      // The baseline first: it only reads the thread's conversation.
      const naiveRuns: Cost[] = [];
      for (let rep = 0; rep < REPETITIONS; rep++) {
        const before = world.openai.requests.length;
        const naive = await naiveAlternatives(client, conversationId, FORK_COUNT, `alice: ${PROMPT}`);
        naiveRuns.push({ ...providerCost(world.openai.requests.slice(before)), ms: naive.ms });
      }

      // Ours: fork, close the vote on B (the winner extends the conversation), and a moderator's /branch reset
      // puts the thread back on its parent, so every repetition forks the same history.
      const ourRuns: Cost[] = [];
      let close: ForkCostRow['close'] | undefined;
      for (let rep = 0; rep < REPETITIONS; rep++) {
        let before = world.openai.requests.length;
        const start = now();
        world.discord.runCommand({
          channelId: threadId,
          userId: alice.id,
          name: 'alternatives',
          options: { count: FORK_COUNT, prompt: PROMPT },
        });
        const shown = await poll(
          () => {
            const found = alternativeMessages(world, threadId).slice(rep * FORK_COUNT);
            return found.length === FORK_COUNT && found.every((m) => !streaming(m)) ? found : undefined;
          },
          { message: `alternatives at ${items} items` },
        );
        const ms = Math.max(...shown.map(lastWrite)) - start;
        const ballot = await waitForBallot(world, threadId, (m) => !m.ephemeral && m.content.startsWith('🗳'));
        ourRuns.push({ ...providerCost(world.openai.requests.slice(before)), ms });

        before = world.openai.requests.length;
        await world.discord
          .clickButton({ messageId: ballot.id, customId: buttonId(ballot, 'B'), userId: alice.id })
          .response();
        await waitForBallot(world, threadId, (m) => m.id === ballot.id && m.content.startsWith('✅'));
        close ??= providerCost(world.openai.requests.slice(before));
        await command(world, { channelId: threadId, userId: mod.id, name: 'branch', subcommand: 'reset' });
      }
      const ours = median(ourRuns);
      const baseline = median(naiveRuns);
      rows.push({ items, buildMs, ours, close: close!, baseline, repetitions: REPETITIONS });
      log(
        `  ${items} items: ours ${ours.calls} calls ${ours.bytes} B ${ours.ms.toFixed(0)} ms; naive ${baseline.calls} calls ${baseline.bytes} B ${baseline.ms.toFixed(0)} ms; close ${close!.calls} calls`,
      );
    }
    return rows;
  } finally {
    await world.close();
  }
}

/** Prompt caching (issue 17): a history of about 1,500 tokens, replies of 200 tokens at the realistic pace. */
const CACHING_BACKENDS = ['conversations', 'responses'] as const;
const CACHE_MODES = ['warm', 'cold', 'off'] as const;
export type CacheMode = (typeof CACHE_MODES)[number];
const LONG_FIRST_MESSAGE = `Here is the whole story: ${Array.from({ length: 1500 }, (_, i) => `word${i % 50}`).join(' ')}`;
const CACHED_PROMPT = '!tokens 200';

export interface ForkCachingRow {
  backend: (typeof CACHING_BACKENDS)[number];
  /** warm: the fork right after a turn; cold: the cache emptied just before it; off: no prompt caching at all. */
  mode: CacheMode;
  /** Input tokens of one alternative's prompt. */
  prompt: number;
  /** Cached input tokens each alternative reported, in the order they started. */
  cached: number[];
  /** Billed input of the whole fork over one turn's: the same prompt once, at the full input price. */
  billedOverTurn: number;
  /** Billed input of the turn just before the fork over the same full price (it reads the history from the cache). */
  turnBilledOverFull: number;
  /** At the provider: the fork's first request start to its last end, over the turn's request alone. */
  providerRatio: number;
}

const billed = (r: RecordedRequest) => {
  const price = DEFAULT_PRICES.get(MODEL)!;
  const seen = r.seen!;
  return (seen.inputTokens - seen.cachedTokens) * price.input + seen.cachedTokens * price.cachedInput;
};
const generations = (w: World, since: number) =>
  w.openai.requests
    .slice(since)
    .filter((r) => r.route === 'POST /v1/responses' && r.status === 200 && r.seen)
    .sort((a, b) => a.startedAt - b.startedAt);

/**
 * The cost of a fork with OpenAI's prompt caching, on the backends that send one request per alternative: a thread
 * whose first message is about 1,500 tokens, one more turn, then `/alternatives count:3`. The first alternative
 * starts at once, the others at its first token, so they read the prompt from the provider's cache.
 */
export async function runForkCaching(log: (line: string) => void): Promise<ForkCachingRow[]> {
  const rows: ForkCachingRow[] = [];
  for (const backend of CACHING_BACKENDS) {
    const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
    try {
      await world.startBot({
        BACKEND: backend,
        ALTERNATIVES_COOLDOWN_SECONDS: '0',
        VOTE_SECONDS: '3600',
        LOG_LEVEL: 'info',
      });
      const alice = world.discord.createUser({ username: 'alice' });
      for (const mode of CACHE_MODES) {
        world.openai.setLatency(NO_LATENCY);
        world.openai.setPromptCaching(mode !== 'off');
        world.openai.clearPromptCache();
        const threadId = await startThread(world, alice.id, LONG_FIRST_MESSAGE);
        world.openai.setLatency(REALISTIC_PACE);
        let since = world.openai.requests.length;
        world.discord.postMessage(threadId, alice.id, CACHED_PROMPT);
        await waitForReplies(world, threadId, 2, 60_000);
        const turn = generations(world, since)[0]!;
        if (mode === 'cold') world.openai.clearPromptCache();
        since = world.openai.requests.length;
        await openVote(world, threadId, alice.id, { count: FORK_COUNT, prompt: CACHED_PROMPT });
        const fork = generations(world, since);
        if (fork.length !== FORK_COUNT) throw new Error(`${backend} ${mode}: ${fork.length} generations`);
        const price = DEFAULT_PRICES.get(MODEL)!;
        const prompt = fork[0]!.seen!.inputTokens;
        const full = (tokens: number) => tokens * price.input;
        const span = (rs: RecordedRequest[]) =>
          Math.max(...rs.map((r) => r.endedAt ?? r.startedAt)) - Math.min(...rs.map((r) => r.startedAt));
        const row: ForkCachingRow = {
          backend,
          mode,
          prompt,
          cached: fork.map((r) => r.seen!.cachedTokens),
          billedOverTurn: fork.reduce((sum, r) => sum + billed(r), 0) / full(prompt),
          turnBilledOverFull: billed(turn) / full(turn.seen!.inputTokens),
          providerRatio: span(fork) / span([turn]),
        };
        rows.push(row);
        log(
          `  ${backend} ${mode}: prompt ${prompt} tokens, cached ${row.cached.join('/')}, billed ${row.billedOverTurn.toFixed(2)} turns, provider T(3)/T(1) ${row.providerRatio.toFixed(2)}`,
        );
      }
    } finally {
      await world.close();
    }
  }
  return rows;
}
