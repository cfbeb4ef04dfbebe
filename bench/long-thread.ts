/**
 * Part 9: a thread that lives for months. The real bot answers a 2,000-turn thread on the OpenAI emulator's 8k test
 * model (`tf-test-8k`), once per backend, at zero model latency and raised Discord limits:
 * - input tokens per turn against the turn number (the emulator's count of what the model read): flat once past the
 *   threshold (60% of the window), never above the window;
 * - the input tokens of all 2,000 turns, summaries and compactions included, against the naive cost (every turn
 *   sends the whole history: the sum of the history's tokens at every turn);
 * - bot time per turn (message posted -> reply finished in Discord, one message at a time) around turn 100 and
 *   around turn 2,000.
 * `node bench/long-thread.ts [backend...]` runs it alone.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendKind } from '../src/core/model.ts';
import { createWorld, startThread, type World } from '../test/e2e/harness.ts';
import { countTokens } from '../test/emulators/openai/index.ts';
import { NO_LATENCY, now, percentile, poll, RAISED_DISCORD_LIMITS } from './common.ts';

export const LONG_TURNS = 2000;
export const LONG_MODEL = 'tf-test-8k';
export const LONG_WINDOW = 8192;
/** CONTEXT_THRESHOLD_PERCENT's default. */
export const LONG_THRESHOLD = Math.floor(LONG_WINDOW * 0.6);
/** Turns timed one at a time around turn 100 and turn 2,000. */
const TIMED = 10;
const AHEAD = 6;

export interface LongThreadResult {
  backend: BackendKind;
  turns: number;
  /** Input tokens the model read at turns 1, 100, 500, 1000, 1500, 2000. */
  inputAt: Record<number, number>;
  /** Most input tokens of a turn in the second half of the thread. */
  maxLateInput: number;
  /** The first turn that did not send the whole history. */
  condensedFrom: number;
  totalInputTokens: number;
  /** Of which summaries and standalone compactions. */
  condensingInputTokens: number;
  naiveInputTokens: number;
  msPerTurnAt100: number;
  msPerTurnAt2000: number;
  wallSeconds: number;
}

const message = (n: number) =>
  `turn ${n}: here is another thought for the long thread, with a few more words so that the context grows steadily`;

/** Requests that answered a turn (not a summary, not a compaction). */
function isTurn(world: World, index: number): boolean {
  const r = world.openai.requests[index]!;
  if (r.method !== 'POST' || !r.seen) return false;
  if (r.path.endsWith('/chat/completions')) return (r.body as { stream?: boolean }).stream === true;
  return r.path.endsWith('/responses') && (r.body as { stream?: boolean }).stream === true;
}

async function runOne(backend: BackendKind, turns: number, log: (line: string) => void) {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'threadfork-bench-long-'));
  const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
  const started = now();
  try {
    world.openai.setLatency(NO_LATENCY);
    await world.startBot({
      BACKEND: backend,
      OPENAI_MODEL: LONG_MODEL,
      LOG_LEVEL: 'info',
      STORE_URL: `sqlite://${join(dir, 'threadfork.sqlite')}`,
    });
    const alice = world.discord.createUser({ username: 'alice' });
    const threadId = await startThread(world, alice.id, message(0));

    let scanned = 0;
    const answered = new Set<string>();
    // Reading the thread's messages costs the emulator (in this process) as much as the thread is long: only when the
    // bot has sent Discord something new, or the measurement would slow down the bot it measures.
    let seenRequests = -1;
    const scan = () => {
      if (world.discord.requests.length === seenRequests) return;
      seenRequests = world.discord.requests.length;
      const all = world.discord.messages(threadId);
      for (; scanned < all.length; scanned += 1) {
        const m = all[scanned]!;
        if (m.authorId !== world.discord.botUserId || !m.referenceId) continue;
        if (JSON.stringify(m.components).includes('"stop:')) break;
        answered.add(m.referenceId);
      }
    };
    let ended = 0;
    let cursor = 0;
    const requestsEnded = () => {
      const { requests } = world.openai;
      for (; cursor < requests.length && requests[cursor]!.endedAt !== undefined; cursor += 1) ended += 1;
      return ended;
    };
    /** Posts turn n and waits for its reply: the bot's time for one turn, nothing queued behind or before it. */
    const timedTurn = async (n: number) => {
      const t0 = now();
      const id = world.discord.postMessage(threadId, alice.id, message(n)).id;
      await poll(
        () => {
          scan();
          return answered.has(id);
        },
        { timeoutMs: 60_000, intervalMs: 1, message: `reply to turn ${n}` },
      );
      return now() - t0;
    };
    const posted: string[] = [];
    const early: number[] = [];
    const late: number[] = [];
    for (let n = 1; n <= turns; n += 1) {
      const timed = (n > 100 - TIMED && n <= 100) || n > turns - TIMED;
      if (timed) {
        await poll(
          () => {
            scan();
            return posted.every((id) => answered.has(id));
          },
          { timeoutMs: 120_000, intervalMs: 5 },
        );
        (n <= 100 ? early : late).push(await timedTurn(n));
        continue;
      }
      const before = posted.length;
      await poll(() => requestsEnded() >= before - AHEAD, { timeoutMs: 120_000, intervalMs: 2 });
      posted.push(world.discord.postMessage(threadId, alice.id, message(n)).id);
      if (n % 500 === 0)
        log(`  ${backend}: turn ${n} posted after ${((now() - started) / 1000).toFixed(0)} s`);
    }

    // Figures from what the model read, request by request.
    const inputs: number[] = [];
    let totalInputTokens = 0;
    let condensingInputTokens = 0;
    let condensedFrom = 0;
    for (const [index, r] of world.openai.requests.entries()) {
      if (!r.seen) continue;
      totalInputTokens += r.seen.inputTokens;
      if (!isTurn(world, index)) {
        condensingInputTokens += r.seen.inputTokens;
        continue;
      }
      const spoken = r.seen.messages.filter((m) => m.role === 'user' || m.role === 'assistant');
      const turn = Number(/turn (\d+):/.exec(spoken.at(-1)?.text ?? '')?.[1]);
      if (!Number.isInteger(turn)) continue;
      inputs[turn] = r.seen.inputTokens;
      if (!condensedFrom && spoken.length < 2 * turn + 1) condensedFrom = turn;
    }
    // The naive cost: every turn sends the whole history (each message's tokens as the emulator counts them).
    const replies = world.discord
      .messages(threadId)
      .filter((m) => m.authorId === world.discord.botUserId && m.referenceId);
    const replyTokens =
      replies.reduce((sum, m) => sum + countTokens(m.content), 0) / Math.max(1, replies.length);
    let history = 0;
    let naiveInputTokens = 0;
    for (let n = 0; n <= turns; n += 1) {
      history += countTokens(`alice: ${message(n)}`);
      naiveInputTokens += history;
      history += replyTokens;
    }
    const at = (n: number) => inputs[Math.min(n, turns)] ?? 0;
    return {
      backend,
      turns,
      inputAt: Object.fromEntries([1, 100, 500, 1000, 1500, 2000].map((n) => [n, at(n)])),
      maxLateInput: Math.max(...inputs.slice(Math.floor(turns / 2)).filter((x) => x !== undefined)),
      condensedFrom,
      totalInputTokens,
      condensingInputTokens,
      naiveInputTokens: Math.round(naiveInputTokens),
      msPerTurnAt100: percentile(early, 50),
      msPerTurnAt2000: percentile(late, 50),
      wallSeconds: (now() - started) / 1000,
    } satisfies LongThreadResult;
  } finally {
    await world.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runLongThread(
  log: (line: string) => void,
  backends: readonly BackendKind[] = ['conversations', 'responses', 'chat'],
  turns = LONG_TURNS,
): Promise<LongThreadResult[]> {
  const results: LongThreadResult[] = [];
  for (const backend of backends) {
    const result = await runOne(backend, turns, log);
    log(`  ${backend}: ${JSON.stringify(result)}`);
    results.push(result);
  }
  return results;
}

if (import.meta.main) {
  const asked = process.argv.slice(2) as BackendKind[];
  const results = await runLongThread(
    (line) => process.stderr.write(`${line}\n`),
    asked.length > 0 ? asked : undefined,
  );
  console.log(JSON.stringify(results, null, 2));
}
