// A long thread on a real llama-server (test/real-llama-server.ts) whose slot reads 4,096 tokens, while the bot was
// told the model reads 16,384 (CHAT_CONTEXT_TOKENS: a server started with less context than its model has). So the
// history overflows before the bot's own threshold: the server's `exceed_context_size_error` must lead to a summary
// (sized by the `n_ctx` the server names) and one retry, not to a dead thread. Skipped, with the reason, when the
// server cannot be set up.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLlamaServer } from '../real-llama-server.ts';
import { createRecordingProxy, type RecordingProxy } from '../recording-proxy.ts';
import { type BotProcess, createWorld, replies, startThread, type World } from './harness.ts';

const llama = await startLlamaServer({ slots: 1, maxTokens: 16 });
afterAll(() => llama.server?.stop());

type Message = { role: string; content: string };

describe.skipIf(!llama.server)(
  `a long thread on a real llama-server${llama.skipped ? ` (SKIPPED: ${llama.skipped})` : ''}`,
  () => {
    let world: World;
    let proxy: RecordingProxy;
    let alice: { id: string };
    let bot: BotProcess;

    beforeAll(async () => {
      proxy = await createRecordingProxy(llama.server!.origin);
      world = await createWorld();
      bot = await world.startBot({
        BACKEND: 'chat',
        OPENAI_BASE_URL: proxy.baseURL,
        OPENAI_MODEL: llama.server!.model,
        CHAT_CONTEXT_TOKENS: '16384',
      });
      alice = world.discord.createUser({ username: 'alice' });
    }, 60_000);
    afterAll(async () => {
      await world?.close();
      await proxy?.close();
    });

    it('summarises and tries again when the server says the history exceeds its context', {
      timeout: 180_000,
    }, async () => {
      const threadId = await startThread(world, alice.id, 'a long story');
      // About 1,250 tokens each for this tokenizer: the fourth message does not fit 4,096 with the three before it.
      const long = (n: number) =>
        `part ${n}: ${'once upon a time there was a very long thread '.repeat(128).trim()}`;
      for (const n of [1, 2, 3, 4]) {
        const posted = world.discord.postMessage(threadId, alice.id, long(n));
        await world.discord.waitFor(
          () =>
            replies(world, threadId).find((r) => r.messages[0]!.referenceId === posted.id && !r.streaming),
          { timeoutMs: 90_000, message: `reply ${n}` },
        );
      }
      const chats = proxy.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions');
      const refused = chats.filter((r) => r.status === 400);
      expect(refused.length).toBe(1);
      expect(refused[0]!.response).toContain('exceed_context_size_error');
      const streamed = (r: (typeof chats)[number]) => (r.body as { stream?: boolean }).stream === true;
      const summaries = chats.filter((r) => !streamed(r) && r.status === 200);
      expect(summaries.length).toBeGreaterThan(0);
      // The retry: the summary, then the message, never the history it stands for; and the server answered it.
      const retry = chats.filter(streamed).at(-1)!;
      const messages = (retry.body as { messages: Message[] }).messages;
      expect(retry.status).toBe(200);
      expect(messages.at(-1)).toEqual({ role: 'user', content: `alice: ${long(4)}` });
      expect(
        messages.some((m) => m.role === 'system' && m.content.startsWith('Summary of the earlier')),
      ).toBe(true);
      expect(messages.some((m) => m.content.includes('part 1:'))).toBe(false);
      // The person sees a reply, not an error; the thread is told once that older messages are summarised.
      const last = replies(world, threadId).findLast((r) => r.messages[0]!.referenceId)!;
      expect(last.text).not.toMatch(/⚠️/);
      const told = world.discord.messages(threadId).filter((m) => m.content.startsWith('🗜️'));
      expect(told).toHaveLength(1);
      expect(bot.logs.some((l) => l.msg === 'condensed the oldest part of a branch')).toBe(true);
    });
  },
);
