/**
 * Part 6: what a thread's length costs the bot. The core runs in this process on the real SQLite store (the keyv
 * adapter `npm start` uses) with a model backend that answers at once, so the figures are the bot's own work:
 * - CPU per turn with 100 and with 20,000 items of history on the branch (same run, same process);
 * - a 10,000-level branch tree (every vote a level deeper) listed, rendered, switched and pruned.
 * `node bench/history.ts` runs it alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { renderBranchList } from '../src/commands/branch.ts';
import { CHUNK_ITEMS, createHistoryLog } from '../src/core/history-log.ts';
import { createLocalLockService } from '../src/core/local-lock.ts';
import { type Branch, type Item, newThreadSession, type ThreadSession } from '../src/core/model.ts';
import { createRunningTurns } from '../src/core/running-turns.ts';
import { createSessionRepository } from '../src/core/sessions.ts';
import { noTelemetry } from '../src/core/telemetry.ts';
import { createThreadService } from '../src/core/threads.ts';
import { openStore } from '../src/store/index.ts';
import { createFakeBackend, createRecordingPresenter, silentLogger } from '../test/fakes.ts';

export const SHORT_HISTORY = 100;
export const LONG_HISTORY = 20_000;
export const TREE_LEVELS = 10_000;
const TURNS_MEASURED = 40;

export interface HistoryResult {
  cpuMsPerTurnShort: number;
  cpuMsPerTurnLong: number;
  ratio: number;
  tree: {
    levels: number;
    branches: number;
    listMs: number;
    renderMs: number;
    switchMs: number;
    pruneMs: number;
    pruned: number;
    turnMs: number;
    /** Branches in the list, which must be all of them. */
    listed: number;
    /** The first and the last page fit Discord's embed limit. */
    pagesFit: boolean;
    /** A message on the deepest branch, after the prune, was answered. */
    answered: boolean;
  };
}

const cpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

function openCore(dir: string) {
  const store = openStore(`sqlite://${join(dir, 'bench.sqlite')}`);
  const sessions = createSessionRepository(store);
  const log = createHistoryLog(store);
  const threads = createThreadService({
    sessions,
    log,
    store,
    locks: createLocalLockService(),
    backend: createFakeBackend(),
    presenter: createRecordingPresenter(),
    running: createRunningTurns(),
    clock: { now: () => Date.now(), setTimer: () => ({ cancel() {} }) },
    logger: silentLogger,
    telemetry: noTelemetry,
    limits: { maxAlternatives: 5, cooldownMs: 0 },
    defaults: SETTINGS,
  });
  return { store, sessions, log, threads };
}

const SETTINGS = {
  model: 'm',
  instructions: undefined,
  alternativesCount: 2,
  autoAlternatives: 0,
  alternativesEnabled: true,
  quorum: 1,
  voteMs: 60_000,
  gatherMessages: false,
  blind: false,
};

function session(threadId: string, branches: Branch[], active: string): ThreadSession {
  return newThreadSession({
    threadId,
    guildId: 'g',
    backend: 'conversations',
    createdBy: 'u',
    createdAt: Date.now(),
    settings: SETTINGS,
    branches,
    activeBranchId: active,
  });
}

const item = (n: number): Item => ({
  id: `i${n}`,
  role: n % 2 === 0 ? 'user' : 'assistant',
  // About 1 kB, as in the measurement.
  text: `${n % 2 === 0 ? 'alice' : 'bot'}: ${'lorem ipsum dolor sit amet '.repeat(38)}`,
});

const branch = (id: string, fields: Partial<Branch> = {}): Branch => ({
  id,
  parentId: undefined,
  forkPoint: 0,
  origin: { kind: 'start' },
  createdBy: 'u',
  createdAt: Date.now(),
  ownItems: 0,
  provider: { conversationId: `conv_${id}` },
  ...fields,
});

/** A thread whose branch already holds `items` items (written as the bot writes them, chunk by chunk). */
async function seedThread(core: ReturnType<typeof openCore>, threadId: string, items: number): Promise<void> {
  await core.sessions.create(session(threadId, [branch('b1', { ownItems: items })], 'b1'));
  for (let at = 0; at < items; at += CHUNK_ITEMS)
    await core.log.write(
      threadId,
      'b1',
      at,
      Array.from({ length: Math.min(CHUNK_ITEMS, items - at) }, (_, i) => item(at + i)),
      0,
    );
}

async function cpuPerTurn(core: ReturnType<typeof openCore>, threadId: string): Promise<number> {
  const turn = async (n: number) => {
    await core.threads.receive({
      threadId,
      messageId: `${threadId}-m${n}`,
      authorId: 'u',
      authorName: 'alice',
      text: `message ${n}`,
    });
    await core.threads.idle();
  };
  for (let n = 0; n < 5; n += 1) await turn(n); // warm up
  const before = cpuMs();
  for (let n = 5; n < 5 + TURNS_MEASURED; n += 1) await turn(n);
  return (cpuMs() - before) / TURNS_MEASURED;
}

async function deepTree(core: ReturnType<typeof openCore>): Promise<HistoryResult['tree']> {
  const threadId = 'deep';
  const branches: Branch[] = [branch('b1', { ownItems: 2 })];
  let number = 2;
  let parent = 'b1';
  // Every level is a vote's winner, two items deeper; every tenth level also has a losing sibling.
  for (let level = 1; level < TREE_LEVELS; level += 1) {
    const winner = branch(`b${number++}`, {
      parentId: parent,
      forkPoint: 2 * level,
      ownItems: 2,
      origin: { kind: 'alternative', letter: 'B', style: undefined, model: undefined },
      provider: undefined,
    });
    branches.push(winner);
    if (level % 10 === 0)
      branches.push(
        branch(`b${number++}`, { parentId: parent, forkPoint: 2 * level, ownItems: 2, provider: undefined }),
      );
    parent = winner.id;
  }
  branches.at(-1)!.provider = { conversationId: 'conv_deep' };
  await core.sessions.create(session(threadId, branches, parent));
  for (let i = 0; i < branches.length; i += 100)
    await Promise.all(
      branches.slice(i, i + 100).map((b) => core.log.write(threadId, b.id, 0, [item(0), item(1)], 0)),
    );
  const by = { userId: 'mod', isModerator: true };
  const time = async <T>(work: () => Promise<T>) => {
    const t0 = performance.now();
    const value = await work();
    return { value, ms: performance.now() - t0 };
  };
  const list = await time(() => core.threads.listBranches(threadId));
  const render = await time(async () => [renderBranchList(list.value, 1), renderBranchList(list.value, 1e9)]);
  const loser = branches.find((b) => b.provider === undefined && b.origin.kind === 'start' && b.parentId)!;
  const switched = await time(() =>
    core.threads.moderate(threadId, { action: 'switch', branchId: loser.id }, by),
  );
  await core.threads.moderate(threadId, { action: 'switch', branchId: parent }, by);
  const pruned = await time(() => core.threads.moderate(threadId, { action: 'prune' }, by));
  const turn = await time(async () => {
    await core.threads.receive({
      threadId,
      messageId: 'deep-m',
      authorId: 'u',
      authorName: 'alice',
      text: 'still there?',
    });
    await core.threads.idle();
  });
  const after = (await core.sessions.get(threadId))!;
  const answered = after.inbox.length === 0 && after.failed.length === 0;
  return {
    levels: TREE_LEVELS,
    branches: branches.length,
    listMs: list.ms,
    renderMs: render.ms,
    switchMs: switched.ms,
    pruneMs: pruned.ms,
    pruned: pruned.value.action === 'prune' ? pruned.value.branchIds.length : 0,
    turnMs: turn.ms,
    listed: list.value.length,
    pagesFit: render.value.every((r) => r.description.length <= 4096),
    answered,
  };
}

export async function runHistory(log: (line: string) => void = () => {}): Promise<HistoryResult> {
  const dir = mkdtempSync(join(tmpdir(), 'threadfork-bench-history-'));
  const core = openCore(dir);
  try {
    log(`  seeding threads of ${SHORT_HISTORY} and ${LONG_HISTORY} items…`);
    await seedThread(core, 'short', SHORT_HISTORY);
    await seedThread(core, 'long', LONG_HISTORY);
    // Alternate so that neither thread gets a warmer process.
    const short1 = await cpuPerTurn(core, 'short');
    const long1 = await cpuPerTurn(core, 'long');
    const short2 = await cpuPerTurn(core, 'short');
    const long2 = await cpuPerTurn(core, 'long');
    const cpuMsPerTurnShort = (short1 + short2) / 2;
    const cpuMsPerTurnLong = (long1 + long2) / 2;
    log(`  a ${TREE_LEVELS}-level branch tree…`);
    const tree = await deepTree(core);
    return { cpuMsPerTurnShort, cpuMsPerTurnLong, ratio: cpuMsPerTurnLong / cpuMsPerTurnShort, tree };
  } finally {
    await core.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const result = await runHistory((line) => process.stderr.write(`${line}\n`));
  console.log(JSON.stringify(result, null, 2));
}
