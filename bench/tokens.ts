/**
 * Part 5, tokens: input tokens billed for one /alternatives (count 3) on a thread of about 2000 tokens, on each
 * backend (a bot per backend, each with its own emulators), against N times what the model is shown (the history and
 * the prompt). Figures read from the usage the bot shows under each alternative ("-# 2034 in · 200 out tokens"), which
 * it takes from the provider's usage. Discord's per-channel limits are raised (the figures do not depend on them).
 */
import type { BackendKind } from '../src/core/model.ts';
import { createWorld, startThread } from '../test/e2e/harness.ts';
import { countTokens } from '../test/emulators/openai/index.ts';
import {
  alternativeMessages,
  finishedReplies,
  NO_LATENCY,
  poll,
  postAndWait,
  RAISED_DISCORD_LIMITS,
  streaming,
} from './common.ts';

export const TOKEN_BACKENDS: BackendKind[] = ['conversations', 'responses', 'chat'];
export const TOKEN_COUNT = 3;
const TURNS = 10;
const PROMPT = 'which of these is best?';

export interface TokensRow {
  backend: BackendKind;
  /** Tokens of what every alternative is shown: the history and the prompt. */
  contextTokens: number;
  billedInputTokens: number;
  /** Generation requests for the /alternatives. */
  requests: number;
}

export async function runTokens(log: (line: string) => void): Promise<TokensRow[]> {
  const rows: TokensRow[] = [];
  for (const backend of TOKEN_BACKENDS) {
    const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
    try {
      await world.startBot({ BACKEND: backend, ALTERNATIVES_COOLDOWN_SECONDS: '0', LOG_LEVEL: 'info' });
      world.openai.setLatency(NO_LATENCY);
      const alice = world.discord.createUser({ username: 'alice' });
      // Ten turns of 200-token replies: about 2000 tokens of history.
      const threadId = await startThread(world, alice.id, '!tokens 200');
      await postAndWait(world, threadId, alice.id, Array(TURNS - 1).fill('!tokens 200'), TURNS);
      const history = world.discord
        .messages(threadId)
        .filter((m) => !m.ephemeral)
        .map((m) =>
          m.authorId === world.discord.botUserId
            ? finishedReplies(world, threadId).some((r) => r.id === m.id)
              ? m.content
              : undefined
            : `alice: ${m.content}`,
        )
        .filter((text): text is string => text !== undefined);
      // The /chat prompt is echoed by the bot ("💬 **alice:** !tokens 200"); the model saw "alice: !tokens 200".
      const contextTokens =
        countTokens('alice: !tokens 200') +
        history.reduce((sum, text) => sum + countTokens(text), 0) +
        countTokens(`alice: ${PROMPT}`);

      const before = world.openai.requests.length;
      world.discord.runCommand({
        channelId: threadId,
        userId: alice.id,
        name: 'alternatives',
        options: { count: TOKEN_COUNT, prompt: PROMPT },
      });
      const shown = await poll(
        () => {
          const found = alternativeMessages(world, threadId);
          return found.length === TOKEN_COUNT &&
            found.every((m) => !streaming(m) && /-# \d+ in/.test(m.content))
            ? found
            : undefined;
        },
        { message: `${TOKEN_COUNT} alternatives on ${backend}` },
      );
      const billed = shown.reduce((sum, m) => sum + Number(m.content.match(/-# (\d+) in · /)?.[1] ?? 0), 0);
      const requests = world.openai.requests
        .slice(before)
        .filter((r) => r.route === 'POST /v1/responses' || r.route === 'POST /v1/chat/completions').length;
      rows.push({ backend, contextTokens, billedInputTokens: billed, requests });
      log(
        `  ${backend}: ${billed} input tokens billed, ${TOKEN_COUNT} × ${contextTokens} = ${TOKEN_COUNT * contextTokens}`,
      );
    } finally {
      await world.close();
    }
  }
  return rows;
}
