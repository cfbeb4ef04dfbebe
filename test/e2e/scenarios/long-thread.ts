import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_LATENCY, poll, RAISED_DISCORD_LIMITS } from '../../../bench/common.ts';
import type { BackendKind } from '../../../src/core/model.ts';
import type { MessageView } from '../../emulators/discord/index.ts';
import { type RecordedRequest, rollDigest } from '../../emulators/openai/index.ts';
import type { ReplyMessage } from '../../emulators/openai/types.ts';
import {
  alternativesIn,
  type BotProcess,
  click,
  command,
  createWorld,
  openVote,
  startThread,
  type World,
  waitForBallot,
} from '../harness.ts';

/** The emulator's test model: an 8,192-token window. */
export const LONG_MODEL = 'tf-test-8k';
const WINDOW = 8192;
/** Turns of the thread (the issue: 2,000); LONG_THREAD_TURNS makes a quick run while working on it. */
const TURNS = Number(process.env.LONG_THREAD_TURNS ?? 2000);
const RESTART_AT = Math.floor(TURNS / 2);
const VOTE_AT = Math.floor((TURNS * 3) / 4);
/** Messages posted ahead of the replies, so the bot never waits for the test. */
const AHEAD = 6;

const SUMMARY_PREFIX = 'Summary of the earlier part of this conversation';

type Said = Pick<ReplyMessage, 'role' | 'text'>;

/** A user message of turn n: some twenty words, so the window is passed after a hundred turns or so. */
const message = (n: number) =>
  `turn ${n}: here is another thought for the long thread, with a few more words so that the context grows steadily`;

/** Requests that answered a turn or an alternative (not summaries, not compactions). */
function generations(world: World): RecordedRequest[] {
  return world.openai.requests.filter((r) => {
    if (r.method !== 'POST' || !r.seen) return false;
    if (r.path.endsWith('/chat/completions')) return (r.body as { stream?: boolean }).stream === true;
    return r.path.endsWith('/responses');
  });
}

const spoken = (seen: readonly Said[]) => seen.filter((m) => m.role === 'user' || m.role === 'assistant');

/**
 * The long-thread scenario of issue 15 on one backend: 2,000 turns on the 8k test model, a restart half-way,
 * alternatives and a vote at three quarters; every reply must see the latest turns verbatim and the summary or
 * compaction of the rest.
 */
export function longThreadScenario(backend: BackendKind): void {
  let world: World;
  let bot: BotProcess;
  let alice: { id: string };
  // The store on a memory file system where there is one: the thread's 2,000 turns are some 20,000 SQLite commits,
  // and on a disk their fsyncs, not the bot, would set the pace.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'threadfork-long-'));
  const env = {
    BACKEND: backend,
    OPENAI_MODEL: LONG_MODEL,
    LOG_LEVEL: 'info',
    STORE_URL: `sqlite://${join(dir, 'threadfork.sqlite')}`,
  };

  beforeAll(async () => {
    world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
    world.openai.setLatency(NO_LATENCY);
    bot = await world.startBot(env);
    alice = world.discord.createUser({ username: 'alice' });
  });
  afterAll(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe(`a thread of ${TURNS} turns on an 8k model (${backend} backend)`, () => {
    it(`keeps answering, each reply from the latest turns verbatim and the condensed rest, through a restart and a vote`, {
      timeout: 300_000,
    }, async () => {
      const threadId = await startThread(world, alice.id, message(0));
      /** The Discord ids of the user messages, by turn. */
      const posted: string[] = [];
      /** Finished replies seen so far, by the message they answer. */
      const answered = new Map<string, MessageView>();
      let scanned = 0;
      const scan = () => {
        const all = world.discord.messages(threadId);
        for (; scanned < all.length; scanned += 1) {
          const m = all[scanned]!;
          if (m.authorId !== world.discord.botUserId || !m.referenceId) continue;
          // A reply is only final once its Stop button is gone: come back to it.
          if (JSON.stringify(m.components).includes('"stop:')) break;
          if (!answered.has(m.referenceId)) answered.set(m.referenceId, m);
        }
      };
      const answeredUpTo = async (turn: number) =>
        poll(
          () => {
            scan();
            return posted.slice(0, turn).every((id) => !id || answered.has(id));
          },
          { timeoutMs: 120_000, intervalMs: 20, message: `replies up to turn ${turn}` },
        );

      // Requests that ended, counted as they end (a scan of the whole log at every poll would cost more than the bot).
      let ended = 0;
      let cursor = 0;
      const turnsDone = () => {
        const { requests } = world.openai;
        for (; cursor < requests.length && requests[cursor]!.endedAt !== undefined; cursor += 1) ended += 1;
        return ended;
      };
      for (let n = 1; n <= TURNS; n += 1) {
        if (n === RESTART_AT) {
          await answeredUpTo(n - 1);
          await bot.stop();
          bot = await world.startBot(env);
        }
        if (n === VOTE_AT) {
          await answeredUpTo(n - 1);
          const ballot = await openVote(world, threadId, alice.id, {
            count: 2,
            prompt: message(n),
            styles: 'plain | winner',
          });
          // Alice is the only one active in the thread: her vote is the majority, and closes the vote.
          await click(world, ballot, 'B', alice.id);
          await waitForBallot(world, threadId, (m) => m.content.startsWith('✅ **B wins'));
          posted.push('');
          continue;
        }
        const before = posted.length;
        await poll(() => turnsDone() >= before - AHEAD, { timeoutMs: 120_000, intervalMs: 2 });
        posted.push(world.discord.postMessage(threadId, alice.id, message(n)).id);
      }
      await answeredUpTo(TURNS);

      // No reply failed, and the thread never reached the window.
      const failed = [...answered.values()].filter((m) => /⚠️|could not|failed/i.test(m.content));
      expect(failed.map((m) => m.content)).toEqual([]);
      const requests = generations(world);
      const turnRequests = requests.filter((r) => spoken(r.seen!.messages).at(-1)?.text.includes('turn '));
      expect(Math.max(...turnRequests.map((r) => r.seen!.inputTokens))).toBeLessThan(WINDOW);

      // Every request sees the messages right before its own verbatim, and what it does not see verbatim is in
      // the summary or the compaction it read.
      let condensedFrom = 0;
      for (const request of turnRequests) {
        const seen = request.seen!;
        const verbatim = spoken(seen.messages);
        const last = verbatim.at(-1)!;
        const turn = Number(/turn (\d+):/.exec(last.text)?.[1]);
        const summarised = seen.messages.some((m) => m.text.startsWith(SUMMARY_PREFIX));
        // Turn n's message is the (2n+1)-th of the thread: the ones before it are either verbatim or condensed.
        const total = 2 * turn + 1;
        if (verbatim.length < total) {
          expect(seen.compaction !== undefined || summarised, `turn ${turn} lost its older messages`).toBe(
            true,
          );
          condensedFrom ||= turn;
        }
        if (seen.compaction) expect(seen.compaction.messageCount + verbatim.length).toBe(total);
        // The latest turns go verbatim: the previous message (a reply) is always there but right after a compaction.
        expect(last.text).toBe(`alice: ${message(turn)}`);
        if (turn > 0 && !seen.compaction) expect(verbatim.at(-2)?.role).toBe('assistant');
      }
      expect(condensedFrom).toBeGreaterThan(0);
      // Some 45 tokens a turn: the threshold (60% of 8,192) is passed after about a hundred turns.
      expect(condensedFrom).toBeLessThan(150);
      // Flat once past the threshold: the last thousand turns cost no more than the window's threshold and a turn.
      const late = turnRequests.slice(-Math.floor(TURNS / 2)).map((r) => r.seen!.inputTokens);
      expect(Math.max(...late)).toBeLessThan(WINDOW * 0.75);

      // The compactions stand for exactly the thread's history before them (checked against the transcript).
      if (backend !== 'chat') {
        const transcript: Said[] = [];
        for (const request of turnRequests) {
          const seen = request.seen!;
          const verbatim = spoken(seen.messages);
          if (seen.compaction) {
            const start = seen.compaction.messageCount;
            for (const [i, m] of verbatim.entries()) transcript[start + i] = { role: m.role, text: m.text };
            expect(seen.compaction.digest).toBe(rollDigest('', transcript.slice(0, start)));
          } else {
            for (const [i, m] of verbatim.entries()) transcript[i] = { role: m.role, text: m.text };
          }
        }
      }

      // The alternatives at the vote saw the condensed context, not the raw history.
      const alternatives = requests.filter((r) =>
        spoken(r.seen!.messages).some((m) => m.text === `alice: ${message(VOTE_AT)}`),
      );
      expect(alternatives.length).toBeGreaterThanOrEqual(2);
      for (const request of alternatives.slice(0, 2)) {
        expect(request.seen!.inputTokens).toBeLessThan(WINDOW * 0.75);
        const seen = request.seen!;
        expect(
          seen.compaction !== undefined || seen.messages.some((m) => m.text.startsWith(SUMMARY_PREFIX)),
        ).toBe(true);
      }
      // The thread went on from the winner: the turn after the vote saw B's reply (verbatim, or in a compaction).
      const after = turnRequests.find(
        (r) => spoken(r.seen!.messages).at(-1)!.text === `alice: ${message(VOTE_AT + 1)}`,
      )!;
      const alternativeText = (letter: string) =>
        alternativesIn(world, threadId)
          .find((m) => m.content.startsWith(`**${letter}** ·`))!
          .content.split('\n')
          .slice(1)
          .filter((line) => !line.startsWith('-# '))
          .join('\n');
      expect(alternativeText('B')).not.toBe(alternativeText('A'));
      const previous = spoken(after.seen!.messages).at(-2) ?? after.seen!.compaction?.last;
      expect(previous?.text).toBe(alternativeText('B'));

      // The thread was told once; a moderator sees what stands for the oldest messages, and can reset it.
      const told = world.discord.messages(threadId).filter((m) => m.content.startsWith('🗜️'));
      expect(told).toHaveLength(1);
      const mod = world.discord.createUser({ username: 'mod', manageThreads: true });
      const shown = await command(world, {
        channelId: threadId,
        userId: mod.id,
        name: 'summary',
        subcommand: 'show',
      });
      expect(shown).toMatch(backend === 'chat' ? /Made by the model/ : /OpenAI compaction/);
      expect(shown).toMatch(/stands for the oldest \d+ of \d+ messages/);
      // (Discord shows /summary only to members with Manage Threads: the emulator refuses it to anyone else.)
      await command(world, { channelId: threadId, userId: mod.id, name: 'summary', subcommand: 'reset' });
      const last = world.discord.postMessage(threadId, alice.id, message(TURNS + 1));
      await poll(
        () => {
          scan();
          return answered.has(last.id);
        },
        { timeoutMs: 60_000, message: 'the reply after the reset' },
      );
      const reset = generations(world).findLast(
        (r) => spoken(r.seen!.messages).at(-1)?.text === `alice: ${message(TURNS + 1)}`,
      )!.seen!;
      expect(reset.compaction).toBeUndefined();
      expect(
        reset.messages.some((m) =>
          m.text.startsWith('The earlier part of this conversation is no longer shown'),
        ),
      ).toBe(true);
    });
  });
}
