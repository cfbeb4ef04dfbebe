// A model whose context window the bot overstates (CONTEXT_WINDOWS set wrong, or a server with a smaller window than
// its name suggests): the bot never condenses ahead of time, so the provider's overflow error is what it meets. It
// must condense and retry once, on every backend, and the thread must not notice beyond the one-time notice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_LATENCY } from '../../bench/common.ts';
import type { BackendKind } from '../../src/core/model.ts';
import { createWorld, replies, startThread, type World, waitForReplies } from './harness.ts';

const MODEL = 'tf-test-8k';
/** Each reply is this many tokens: the 8,192-token window is full after six turns. */
const REPLY_TOKENS = 1200;
const TURNS = 12;

describe.each<BackendKind>(['conversations', 'responses', 'chat'])(
  'a context overflow (%s backend)',
  (backend) => {
    let world: World;

    beforeAll(async () => {
      world = await createWorld();
      world.openai.setLatency(NO_LATENCY);
      await world.startBot({
        BACKEND: backend,
        OPENAI_MODEL: MODEL,
        // The bot believes the window is a million tokens: it only learns otherwise from the provider's error.
        CONTEXT_WINDOWS: `${MODEL}=1000000`,
        LOG_LEVEL: 'info',
      });
    });
    afterAll(() => world?.close());

    it('is condensed and retried once: every message is answered, and the model reads the condensed history', {
      timeout: 180_000,
    }, async () => {
      const alice = world.discord.createUser({ username: 'alice' });
      const threadId = await startThread(world, alice.id, `!tokens ${REPLY_TOKENS} turn 0`);
      await waitForReplies(world, threadId, 1, 60_000);
      for (let n = 1; n < TURNS; n++) {
        world.discord.postMessage(threadId, alice.id, `!tokens ${REPLY_TOKENS} turn ${n}`);
        await waitForReplies(world, threadId, n + 1, 60_000);
      }

      // Every turn got its reply in full: filler tokens, no error in its place.
      const answered = replies(world, threadId);
      expect(answered).toHaveLength(TURNS);
      for (const reply of answered) {
        expect(reply.text).not.toMatch(/⚠️|too long|could not/i);
        expect(reply.text.split(/\s+/).filter(Boolean).length).toBeGreaterThanOrEqual(REPLY_TOKENS);
      }

      const generations = world.openai.requests.filter(
        (r) =>
          r.method === 'POST' &&
          (r.path.endsWith('/v1/responses') ||
            (r.path.endsWith('/chat/completions') && (r.body as { stream?: boolean }).stream === true)),
      );
      const overflows = generations.filter((r) => r.status === 400);
      // The window was met (twelve turns of 1,200 tokens are 14,400), and each time it was condensed then retried once.
      expect(overflows.length).toBeGreaterThanOrEqual(1);
      for (const overflow of overflows) {
        const retry = generations.find((r) => r.id > overflow.id)!;
        expect(retry.status).toBe(200);
        const seen = retry.seen!;
        expect(seen.inputTokens).toBeLessThanOrEqual(8192);
        // What it read stands for the older turns: a compaction item, or the model's own summary.
        expect(
          seen.compaction !== undefined || seen.messages.some((m) => /summary/i.test(m.text.slice(0, 120))),
        ).toBe(true);
        // ...and the latest message verbatim.
        expect(seen.messages.at(-1)?.text).toMatch(/turn \d+$/);
      }
      // The thread was told once that older messages are condensed.
      expect(world.discord.messages(threadId).filter((m) => m.text.startsWith('🗜️'))).toHaveLength(1);
    });
  },
);
