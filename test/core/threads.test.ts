import { describe, expect, it } from 'vitest';
import { BadInputError, NotAllowedError, RateLimitedError, UpstreamError } from '../../src/core/errors.ts';
import { createHistoryLog } from '../../src/core/history-log.ts';
import { createLocalLockService } from '../../src/core/local-lock.ts';
import type { BranchAction, Generated, ModelBackend } from '../../src/core/ports.ts';
import { createRunningTurns } from '../../src/core/running-turns.ts';
import { createSessionRepository } from '../../src/core/sessions.ts';
import { noTelemetry } from '../../src/core/telemetry.ts';
import { type AlternativesRequest, createThreadService, type Moderator } from '../../src/core/threads.ts';
import { applyVoteEvent } from '../../src/core/votes.ts';
import {
  createFakeBackend,
  createManualClock,
  createMemoryStore,
  createRecordingPresenter,
  silentLogger,
  TEST_SETTINGS,
} from '../fakes.ts';

const THREAD = 'thread-1';

function createCore({ cooldownMs = 0, quorum = 1 } = {}) {
  const store = createMemoryStore();
  const sessions = createSessionRepository(store);
  const log = createHistoryLog(store);
  const backend = createFakeBackend();
  const presenter = createRecordingPresenter();
  const clock = createManualClock();
  const defaults = { ...TEST_SETTINGS, quorum };
  const threads = createThreadService({
    sessions,
    log,
    store,
    locks: createLocalLockService(),
    backend,
    presenter,
    running: createRunningTurns(),
    clock,
    logger: silentLogger,
    telemetry: noTelemetry,
    defaults,
    limits: { maxAlternatives: 5, cooldownMs },
  });
  const turns = {
    startThread: threads.startThread,
    receive: threads.receive,
    retry: threads.retry,
    resume: threads.resume,
    idle: threads.idle,
  };
  const getVote = async (voteId: string) => {
    const vote = (await sessions.get(THREAD))?.vote;
    return vote?.id === voteId ? vote : undefined;
  };
  const alternatives = {
    vote: (voteId: string, userId: string, letter: string) =>
      threads.castBallot(THREAD, voteId, userId, letter),
    close: (voteId: string, userId: string, isModerator: boolean) =>
      threads.closeVote(THREAD, voteId, { userId, isModerator }),
    pick: (voteId: string, letter: string, userId: string, isModerator: boolean) =>
      threads.pickWinner(THREAD, voteId, letter, { userId, isModerator }),
    getVote,
    sweep: threads.sweep,
  };
  const audits: BranchAction[] = [];
  const record = async (promise: Promise<BranchAction>) => {
    const action = await promise;
    audits.push(action);
    return action;
  };
  const branches = {
    list: threads.listBranches,
    switchTo: (threadId: string, branchId: string, by: Moderator) =>
      record(threads.moderate(threadId, { action: 'switch', branchId }, by)),
    reset: (threadId: string, to: string | undefined, by: Moderator) =>
      record(threads.moderate(threadId, { action: 'reset', to }, by)),
    prune: (threadId: string, by: Moderator) => record(threads.moderate(threadId, { action: 'prune' }, by)),
  };
  let messageNumber = 0;
  const say = async (text: string, authorId = 'u1') => {
    messageNumber += 1;
    await turns.receive({
      threadId: THREAD,
      messageId: `m${messageNumber}`,
      authorId,
      authorName: authorId,
      text,
    });
  };
  const ask = (fields: Partial<AlternativesRequest> = {}) =>
    threads.requestAlternatives({
      threadId: THREAD,
      userId: 'u1',
      isModerator: false,
      count: undefined,
      prompt: undefined,
      styles: [],
      models: [],
      temperature: undefined,
      ...fields,
    });
  const history = async () => {
    const session = (await sessions.get(THREAD))!;
    return (await log.view(session, session.activeBranchId).read()).map((item) => item.text);
  };
  return {
    store,
    sessions,
    log,
    backend,
    presenter,
    clock,
    threads,
    turns,
    alternatives,
    branches,
    audits,
    say,
    ask,
    history,
  };
}

async function startedCore(options?: Parameters<typeof createCore>[0]) {
  const core = createCore(options);
  await core.turns.startThread({ threadId: THREAD, guildId: 'g', userId: 'u1' });
  return core;
}

describe('turns', () => {
  it('answers every message in order, each from the whole history before it', async () => {
    const core = await startedCore();
    await Promise.all([core.say('one'), core.say('two'), core.say('three')]);
    await core.turns.idle();
    const turns = core.backend.calls.filter((c) => c.method === 'runTurn');
    expect(turns.map((c) => c.input![0]!.text)).toEqual(['u1: one', 'u1: two', 'u1: three']);
    // The conversation holds the history: a turn on it reads none of the bot's own record.
    expect(turns.map((c) => c.history!.length)).toEqual([0, 0, 0]);
    expect(core.backend.conversations.get('conv_1')!.map((item) => item.text)).toEqual(await core.history());
    expect(core.presenter.replies.map((r) => r.outcome?.kind)).toEqual(['done', 'done', 'done']);
    expect(await core.history()).toEqual([
      'u1: one',
      'reply to "u1: one" after 0 items',
      'u1: two',
      'reply to "u1: two" after 2 items',
      'u1: three',
      'reply to "u1: three" after 4 items',
    ]);
  });

  it('answers messages that arrived during a reply together when the thread gathers them', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({ ...s, settings: { ...s.settings, gatherMessages: true } }));
    await Promise.all([core.say('one'), core.say('two'), core.say('three')]);
    await core.turns.idle();
    const inputs = core.backend.calls.filter((c) => c.method === 'runTurn').map((c) => c.input![0]!.text);
    // Messages waiting when a turn starts are answered together, in order, in fewer turns than messages.
    expect(inputs.length).toBeLessThan(3);
    expect(inputs.join('\n\n')).toBe('u1: one\n\nu1: two\n\nu1: three');
    expect(core.presenter.replies).toHaveLength(inputs.length);
  });

  it('never writes the result of a turn whose lock was taken over, and stops working the thread at once', async () => {
    const core = await startedCore();
    await core.say('first');
    await core.turns.idle();
    // During the next turn the lock is lost and a newer holder claims the thread (a higher fencing token).
    const runTurn = core.backend.runTurn.bind(core.backend);
    core.backend.runTurn = async (request) => {
      const result = await runTurn(request);
      await core.sessions.claim(THREAD, Number.MAX_SAFE_INTEGER);
      return result;
    };
    await core.say('second');
    await core.say('third');
    await core.turns.idle();
    expect(await core.history()).toHaveLength(2);
    expect(core.presenter.replies.at(-1)!.outcome).toMatchObject({
      kind: 'failed',
      error: { code: 'lock_lost' },
    });
    // Both messages stay waiting for the new holder; this process neither failed them nor went on to the third.
    const session = (await core.sessions.get(THREAD))!;
    expect(session.inbox.map((m) => m.text)).toEqual(['u1: second', 'u1: third']);
    expect(session.failed).toEqual([]);
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(2);
  });

  it('answers a message delivered twice once, even when the second comes after its reply', async () => {
    // While resharding, two processes may both get a guild's events, one of them after the other answered.
    const core = await startedCore();
    const message = { threadId: THREAD, messageId: 'm1', authorId: 'u1', authorName: 'u1', text: 'one' };
    await Promise.all([core.turns.receive(message), core.turns.receive(message)]);
    await core.turns.idle();
    await core.turns.receive(message);
    await core.turns.idle();
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(1);
    expect(core.presenter.replies).toHaveLength(1);
  });

  it('ignores messages in threads it does not manage', async () => {
    const core = createCore();
    expect(
      await core.turns.receive({
        threadId: 'other',
        messageId: 'x',
        authorId: 'u',
        authorName: 'u',
        text: 'hi',
      }),
    ).toBe('ignored');
  });

  it('keeps a failed message for the Retry button, and the thread stays usable', async () => {
    const core = await startedCore();
    core.backend.failNext.push(new UpstreamError('auth', 'bad key', { retryable: false }));
    await core.say('first');
    await core.turns.idle();
    expect(core.presenter.replies[0]!.outcome).toMatchObject({ kind: 'failed', retryMessageId: 'm1' });
    await core.say('second');
    await core.turns.idle();
    expect(await core.history()).toEqual(['u1: second', 'reply to "u1: second" after 0 items']);
    await core.turns.retry(THREAD, 'm1');
    await core.turns.idle();
    expect((await core.history()).at(-2)).toBe('u1: first');
    await expect(core.turns.retry(THREAD, 'm1')).rejects.toThrow(/already answered/);
  });

  it('brings a whole gathered batch back with the Retry button of its failed reply', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({
      ...s,
      settings: { ...s.settings, gatherMessages: true },
      inbox: ['one', 'two', 'three'].map((text, i) => ({
        messageId: `g${i + 1}`,
        authorId: 'u1',
        authorName: 'u1',
        text: `u1: ${text}`,
        receivedAt: 0,
        attempts: 0,
      })),
    }));
    await core.sessions.setHasWork(THREAD, true);
    core.backend.failNext.push(new UpstreamError('unavailable', 'Down.', { retryable: true }));
    await core.threads.resume();
    await core.turns.idle();
    expect(core.presenter.replies[0]!.outcome).toMatchObject({ kind: 'failed', retryMessageId: 'g3' });
    expect((await core.sessions.get(THREAD))!.failed.map((m) => m.messageId)).toEqual(['g1', 'g2', 'g3']);
    await core.turns.retry(THREAD, 'g3');
    await core.turns.idle();
    expect(await core.history()).toEqual([
      'u1: one\n\nu1: two\n\nu1: three',
      'reply to "u1: one\n\nu1: two\n\nu1: three" after 0 items',
    ]);
    expect((await core.sessions.get(THREAD))!.failed).toEqual([]);
  });

  it('answers again, after a restart, a message whose turn was interrupted', async () => {
    const core = await startedCore();
    // What a process that died mid-turn leaves behind: the message in the inbox, one attempt started.
    await core.sessions.update(THREAD, (s) => ({
      ...s,
      inbox: [
        { messageId: 'm9', authorId: 'u1', authorName: 'u1', text: 'u1: lost?', receivedAt: 0, attempts: 1 },
      ],
    }));
    await core.sessions.setHasWork(THREAD, true);
    await core.turns.resume();
    await core.turns.idle();
    expect(await core.history()).toEqual(['u1: lost?', 'reply to "u1: lost?" after 0 items']);
  });

  it('releases the conversation a resumed turn moved away from, once the turn is committed', async () => {
    const core = await startedCore();
    await core.say('first');
    await core.turns.idle();
    const before = (await core.sessions.get(THREAD))!.branches.b1!.provider;
    // An attempt at the next message was interrupted (its process died or lost its lock), perhaps still running.
    await core.sessions.update(THREAD, (s) => ({
      ...s,
      inbox: [
        { messageId: 'm9', authorId: 'u1', authorName: 'u1', text: 'u1: again', receivedAt: 0, attempts: 1 },
      ],
    }));
    await core.sessions.setHasWork(THREAD, true);
    await core.turns.resume();
    await core.turns.idle();
    const after = (await core.sessions.get(THREAD))!.branches.b1!.provider;
    expect(after).not.toEqual(before);
    expect(core.backend.calls.filter((c) => c.method === 'release')).toEqual([
      { method: 'release', provider: before },
    ]);
    expect(core.backend.calls.at(-2)?.history?.map((i) => i.text)).toEqual([
      'u1: first',
      'reply to "u1: first" after 0 items',
    ]);
    expect(await core.history()).toEqual([
      'u1: first',
      'reply to "u1: first" after 0 items',
      'u1: again',
      'reply to "u1: again" after 2 items',
    ]);
  });

  it('leaves a message for the next process when the bot stops before its reply began', async () => {
    const core = await startedCore();
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    // A model that has written nothing yet when the grace runs out (a slow first token).
    core.backend.runTurn = ({ signal }) =>
      new Promise((resolve) => {
        started();
        signal.addEventListener('abort', () =>
          resolve({
            text: '',
            usage: { inputTokens: 0, outputTokens: 0 },
            responseId: undefined,
            stopped: true,
            refused: false,
            // The conversation this attempt made (the branch had none yet).
            provider: { conversationId: 'conv_attempt' },
          }),
        );
      });
    await core.say('slow');
    await running;
    await core.threads.shutdown(0);
    expect(core.presenter.replies[0]!.outcome).toMatchObject({
      kind: 'failed',
      error: { code: 'shutting_down' },
      retryMessageId: undefined,
    });
    const session = (await core.sessions.get(THREAD))!;
    expect(session.inbox.map((m) => [m.messageId, m.attempts])).toEqual([['m1', 1]]);
    expect(await core.history()).toEqual([]);
    expect(session.branches.b1!.provider).toBeUndefined();
    expect(core.backend.calls.filter((c) => c.method === 'release')).toEqual([
      { method: 'release', provider: { conversationId: 'conv_attempt' } },
    ]);
  });
});

describe('alternatives and votes', () => {
  it('generates every alternative from the same history and continues on the winner only', async () => {
    const core = await startedCore();
    await core.say('plan a trip');
    await core.turns.idle();
    const vote = await core.ask({
      count: 3,
      prompt: { messageId: 'p1', authorName: 'u1', text: 'where?' },
      styles: ['formal', 'funny'],
    });
    const generation = core.backend.calls.find((c) => c.method === 'generateAlternatives')!;
    expect(generation.history).toHaveLength(2);
    expect(generation.options!.map((o) => o.instructions)).toEqual(['formal', 'funny', undefined]);
    expect(vote.options.map((o) => [o.letter, o.style, o.status])).toEqual([
      ['A', 'formal', 'ok'],
      ['B', 'funny', 'ok'],
      ['C', undefined, 'ok'],
    ]);
    await core.say('and then?');
    await core.turns.idle();
    // The message waits for the vote.
    expect(core.backend.calls.filter((c) => c.method === 'runTurn')).toHaveLength(1);

    const result = await core.alternatives.vote(vote.id, 'u2', 'B');
    expect(result.vote).toMatchObject({ status: 'closed', winner: 'B', closedBy: { reason: 'quorum' } });
    await core.turns.idle();
    const history = await core.history();
    expect(history.slice(2, 4)).toEqual(['u1: where?', 'reply to "u1: where?" after 2 items [funny]']);
    expect(history.join('\n')).not.toContain('[formal]');
    expect(history.at(-2)).toBe('u1: and then?');
    // The winner extended its parent's conversation: one transfer, no full copy.
    expect(core.backend.calls.filter((c) => c.method === 'transfer')).toHaveLength(1);
  });

  it('makes the same provider calls for a fork whatever the history length', async () => {
    const counts: number[] = [];
    for (const turns of [5, 100]) {
      const core = await startedCore();
      for (let i = 0; i < turns; i += 1) await core.say(`message ${i}`);
      await core.turns.idle();
      const before = core.backend.calls.length;
      const vote = await core.ask({ count: 3, prompt: { messageId: 'p', authorName: 'u1', text: 'fork' } });
      await core.alternatives.vote(vote.id, 'u1', 'C');
      counts.push(core.backend.calls.length - before);
    }
    expect(counts[0]).toBe(counts[1]);
  });

  it('keeps the current reply as alternative A when no prompt is given', async () => {
    const core = await startedCore();
    await core.say('hello');
    await core.turns.idle();
    const vote = await core.ask({ count: 2 });
    // The reply the message already got stands as A, on the branch it is on.
    expect(vote.options.map((o) => o.branchId)).toEqual(['b1', 'b2']);
    expect(core.backend.calls.at(-1)!.input!.map((i) => i.text)).toEqual(['u1: hello']);
    await core.alternatives.vote(vote.id, 'u1', 'B');
    const history = await core.history();
    expect(history).toEqual(['u1: hello', 'reply to "u1: hello" after 0 items']);
    expect((await core.sessions.get(THREAD))!.activeBranchId).toBe('b2');
  });

  it('counts one vote per person, moves and removes it, and closes at the quorum', async () => {
    const core = await startedCore({ quorum: 2 });
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ count: 3, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    expect((await core.alternatives.vote(vote.id, 'a', 'A')).change).toBe('added');
    expect((await core.alternatives.vote(vote.id, 'a', 'B')).change).toBe('moved');
    expect((await core.alternatives.vote(vote.id, 'b', 'C')).change).toBe('added');
    expect((await core.alternatives.vote(vote.id, 'b', 'C')).change).toBe('removed');
    const closing = await core.alternatives.vote(vote.id, 'c', 'B');
    expect(closing.vote).toMatchObject({ status: 'closed', winner: 'B', ballots: { a: 'B', c: 'B' } });
    await expect(core.alternatives.vote(vote.id, 'd', 'A')).rejects.toThrow(BadInputError);
  });

  it('by default closes at a majority of the people who posted in the last half hour', async () => {
    const core = await startedCore({ quorum: 0 });
    await core.say('long ago', 'gone');
    await core.turns.idle();
    core.clock.advance(31 * 60_000);
    for (const who of ['u1', 'u2', 'u3']) await core.say(`hi from ${who}`, who);
    await core.turns.idle();
    const vote = await core.ask({ count: 2, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    // Three active (u1, u2, u3; "gone" posted too long ago): two votes decide.
    expect(vote.quorum).toBe(2);
    expect((await core.alternatives.vote(vote.id, 'u2', 'B')).vote.status).toBe('open');
    expect((await core.alternatives.vote(vote.id, 'gone', 'B')).vote).toMatchObject({
      status: 'closed',
      winner: 'B',
    });
  });

  it('votes blind: letters only while open, each letter one of the asked-for styles, told on the vote', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({ ...s, settings: { ...s.settings, blind: true } }));
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({
      count: 3,
      prompt: { messageId: 'p', authorName: 'u1', text: 'go' },
      styles: ['formal', 'funny', 'terse'],
    });
    expect(vote.blind).toBe(true);
    expect(vote.options.map((o) => o.style).sort()).toEqual(['formal', 'funny', 'terse']);
    // Each letter's branch answered with the style its option names, whatever the shuffle gave it.
    const generation = core.backend.calls.find((c) => c.method === 'generateAlternatives')!;
    expect(generation.options!.map((o) => o.instructions)).toEqual(vote.options.map((o) => o.style));
  });

  it('keeps an exact tally when thirty people click at once', async () => {
    const core = await startedCore({ quorum: 100 });
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ count: 3, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => core.alternatives.vote(vote.id, `voter${i}`, 'ABC'[i % 3]!)),
    );
    const stored = (await core.alternatives.getVote(vote.id))!;
    expect(Object.keys(stored.ballots)).toHaveLength(30);
    expect(Object.values(stored.ballots).filter((l) => l === 'A')).toHaveLength(10);
  });

  it('lets the invoker or a moderator close by plurality, ties to the earlier letter', async () => {
    const core = await startedCore({ quorum: 5 });
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ count: 3, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    await core.alternatives.vote(vote.id, 'x', 'C');
    await core.alternatives.vote(vote.id, 'y', 'B');
    await expect(core.alternatives.close(vote.id, 'stranger', false)).rejects.toThrow(NotAllowedError);
    const closed = await core.alternatives.close(vote.id, 'u1', false);
    expect(closed).toMatchObject({ winner: 'B', closedBy: { reason: 'close', userId: 'u1' } });
  });

  it('lets only a moderator pick the winner', async () => {
    const core = await startedCore({ quorum: 5 });
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ count: 2, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    await expect(core.alternatives.pick(vote.id, 'B', 'u1', false)).rejects.toThrow(NotAllowedError);
    expect(await core.alternatives.pick(vote.id, 'B', 'mod', true)).toMatchObject({
      winner: 'B',
      closedBy: { reason: 'moderator' },
    });
  });

  it('closes at the deadline on A when nobody voted, and again after a restart', async () => {
    const core = await startedCore({ quorum: 5 });
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ count: 2, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    core.clock.advance(61_000);
    await new Promise((resolve) => setImmediate(resolve));
    await core.turns.idle();
    expect(await core.alternatives.getVote(vote.id)).toMatchObject({
      status: 'applied',
      winner: 'A',
      closedBy: { reason: 'deadline' },
    });
  });

  it('finishes applying a winner that a dead process had closed but not applied', async () => {
    const core = await startedCore({ quorum: 5 });
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ count: 2, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    // What the dead process left: the vote closed on B (one atomic transition), its winner never moved to.
    await core.sessions.update(THREAD, (s) =>
      applyVoteEvent(s, {
        type: 'closed',
        voteId: vote.id,
        winner: 'B',
        userId: 'u1',
        reason: 'close',
        at: 1,
      }),
    );
    const transfers = () => core.backend.calls.filter((c) => c.method === 'transfer').length;
    expect(transfers()).toBe(0);
    await core.alternatives.sweep();
    await core.turns.idle();
    const session = (await core.sessions.get(THREAD))!;
    expect(session.vote?.status).toBe('applied');
    expect(session.activeBranchId).toBe(vote.options[1]!.branchId);
    expect(transfers()).toBe(1);
    await core.say('next');
    await core.turns.idle();
    expect(await core.history()).toEqual([
      'u1: hi',
      'reply to "u1: hi" after 0 items',
      'u1: go',
      'reply to "u1: go" after 2 items',
      'u1: next',
      'reply to "u1: next" after 4 items',
    ]);
  });

  it('shows a failed alternative as failed and votes among the others', async () => {
    const core = await startedCore();
    await core.say('hi');
    await core.turns.idle();
    core.backend.failNext.push(
      new UpstreamError('rate_limited', 'OpenAI is rate limiting', { retryable: true }),
    );
    const vote = await core.ask({ count: 3, prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    expect(vote.options.map((o) => [o.letter, o.status, o.error])).toEqual([
      ['A', 'failed', 'OpenAI is rate limiting'],
      ['B', 'ok', undefined],
      ['C', 'ok', undefined],
    ]);
    await expect(core.alternatives.vote(vote.id, 'u1', 'A')).rejects.toThrow(/cannot be chosen/);
    expect((await core.alternatives.vote(vote.id, 'u1', 'B')).vote.status).toBe('closed');
  });

  it('refuses bad requests and changes nothing', async () => {
    const core = await startedCore({ cooldownMs: 30_000 });
    await expect(core.ask({ threadId: 'unmanaged' })).rejects.toThrow(/thread started with \/chat/);
    await expect(core.ask({ count: 6 })).rejects.toThrow(/between 2 and 5/);
    await expect(core.ask({ count: 1 })).rejects.toThrow(/between 2 and 5/);
    await expect(core.ask()).rejects.toThrow(/no message to answer/);
    await core.say('hi');
    await core.turns.idle();
    const vote = await core.ask({ prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    await expect(core.ask({ userId: 'u2' })).rejects.toThrow(/already open/);
    await core.alternatives.vote(vote.id, 'u1', 'A');
    await expect(core.ask()).rejects.toThrow(RateLimitedError);
    core.clock.advance(30_001);
    await core.ask();
    expect(core.backend.calls.filter((c) => c.method === 'generateAlternatives')).toHaveLength(2);
  });

  it('keeps a message whose automatic alternatives all failed, with a Retry that gives it alternatives again', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({ ...s, settings: { ...s.settings, autoAlternatives: 2 } }));
    const down = () => new UpstreamError('unavailable', 'OpenAI is down.', { retryable: true });
    core.backend.failNext.push(down(), down());
    await core.say('surprise me');
    await core.turns.idle();
    let session = (await core.sessions.get(THREAD))!;
    expect(session.vote?.status).toBe('cancelled');
    expect(session.failed.map((m) => m.messageId)).toEqual(['m1']);
    expect(core.presenter.replies.map((r) => r.outcome)).toMatchObject([
      { kind: 'failed', retryMessageId: undefined },
      { kind: 'failed', retryMessageId: 'm1' },
    ]);
    await core.turns.retry(THREAD, 'm1');
    await core.turns.idle();
    session = (await core.sessions.get(THREAD))!;
    expect(session.vote?.status).toBe('open');
    expect(session.failed).toEqual([]);
  });

  it('keeps a message whose automatic fork failed after it started, with a Retry on what was shown', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({ ...s, settings: { ...s.settings, autoAlternatives: 2 } }));
    // The alternatives are shown, then the generation fails as a whole (not one alternative: the call itself).
    const generate = core.backend.generateAlternatives;
    core.backend.generateAlternatives = () => Promise.reject(new Error('socket hang up'));
    await core.say('surprise me');
    await core.turns.idle();
    let session = (await core.sessions.get(THREAD))!;
    expect(session.vote).toMatchObject({ status: 'cancelled', cancelReason: 'failed' });
    expect(session.failed.map((m) => m.messageId)).toEqual(['m1']);
    expect(core.presenter.replies.map((r) => r.outcome)).toMatchObject([
      { kind: 'failed', retryMessageId: undefined },
      { kind: 'failed', retryMessageId: 'm1' },
    ]);
    // The ballot the alternatives were shown in is shown cancelled.
    expect(core.presenter.ballots.at(-1)).toMatchObject({ status: 'cancelled' });
    core.backend.generateAlternatives = generate;
    await core.turns.retry(THREAD, 'm1');
    await core.turns.idle();
    session = (await core.sessions.get(THREAD))!;
    expect(session.vote?.status).toBe('open');
    expect(session.failed).toEqual([]);
  });

  it('gives every message alternatives when the thread asks for them automatically', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({ ...s, settings: { ...s.settings, autoAlternatives: 2 } }));
    await core.say('surprise me');
    await core.turns.idle();
    const session = (await core.sessions.get(THREAD))!;
    expect(session.vote?.status).toBe('open');
    expect(session.inbox).toEqual([]);
    expect(core.presenter.replies.map((r) => r.header)).toEqual(['A', 'B']);
  });
});

describe('alternatives the shutdown stops', () => {
  /** Alternatives that run until their signal aborts, then end stopped with `text`. */
  function untilStopped(text: (index: number) => string) {
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const generate: ModelBackend['generateAlternatives'] = async ({ variants }) => {
      started();
      return Promise.all(
        variants.map(
          (variant, index) =>
            new Promise<PromiseSettledResult<Generated>>((resolve) =>
              variant.signal.addEventListener('abort', () =>
                resolve({
                  status: 'fulfilled',
                  value: {
                    text: text(index),
                    usage: { inputTokens: 1, outputTokens: 1 },
                    responseId: undefined,
                    stopped: true,
                    refused: false,
                  },
                }),
              ),
            ),
        ),
      );
    };
    return { generate, running };
  }

  it('tells an alternative its asker stopped from one the shutdown stopped', async () => {
    const core = await startedCore();
    await core.say('hi');
    await core.turns.idle();
    const turnIds: string[] = [];
    const startAlternatives = core.presenter.startAlternatives;
    core.presenter.startAlternatives = (threadId, fork) => {
      turnIds.push(...fork.turns.map((t) => t.turnId));
      return startAlternatives(threadId, fork);
    };
    const { generate, running } = untilStopped(() => 'partial');
    core.backend.generateAlternatives = generate;
    const asked = core.ask({ prompt: { messageId: 'p', authorName: 'u1', text: 'go' } });
    await running;
    core.threads.stopReply(turnIds[0]!, { userId: 'u1', isModerator: false });
    await Promise.all([asked, core.threads.shutdown(0)]);
    expect(core.presenter.replies.slice(1).map((r) => r.outcome)).toMatchObject([
      { kind: 'stopped', by: 'person' },
      { kind: 'stopped', by: 'shutdown' },
    ]);
  });

  it('calls off a fork cut before any alternative was written, and keeps its messages for the next process', async () => {
    const core = await startedCore();
    await core.sessions.update(THREAD, (s) => ({ ...s, settings: { ...s.settings, autoAlternatives: 2 } }));
    const { generate, running } = untilStopped(() => '');
    core.backend.generateAlternatives = generate;
    await core.say('surprise me');
    await running;
    await core.threads.shutdown(0);
    const session = (await core.sessions.get(THREAD))!;
    expect(session.vote).toMatchObject({ status: 'cancelled', cancelReason: 'restart' });
    expect(session.inbox.map((m) => m.messageId)).toEqual(['m1']);
    expect(session.failed).toEqual([]);
    expect(Object.keys(session.branches)).toEqual(['b1']);
    expect(core.presenter.notices).toEqual([
      { kind: 'vote_cancelled', reason: 'restart', answeredAgain: true },
    ]);
    expect(core.presenter.replies.map((r) => r.outcome)).toMatchObject([
      { kind: 'failed', error: { code: 'shutting_down' }, retryMessageId: undefined },
      { kind: 'failed', error: { code: 'shutting_down' }, retryMessageId: undefined },
    ]);
  });
});

describe('branches', () => {
  const mod = { userId: 'mod', isModerator: true };

  async function twoForks() {
    const core = await startedCore();
    await core.say('start');
    await core.turns.idle();
    const first = await core.ask({
      count: 2,
      prompt: { messageId: 'p1', authorName: 'u1', text: 'fork one' },
    });
    await core.alternatives.vote(first.id, 'u1', 'B'); // b3 wins, b2 loses
    core.clock.advance(60_000);
    const second = await core.ask({
      count: 2,
      prompt: { messageId: 'p2', authorName: 'u1', text: 'fork two' },
    });
    await core.alternatives.vote(second.id, 'u1', 'A'); // b4 wins, b5 loses
    await core.turns.idle();
    return core;
  }

  it('lists the tree with the active branch marked, each branch after its parent', async () => {
    const core = await twoForks();
    const tree = await core.branches.list(THREAD);
    expect(tree.map((b) => [b.id, b.parentId, b.depth, b.active])).toEqual([
      ['b1', undefined, 0, false],
      ['b2', 'b1', 1, false],
      ['b3', 'b1', 1, false],
      ['b4', 'b3', 2, true],
      ['b5', 'b3', 2, false],
    ]);
    expect(tree.find((b) => b.id === 'b3')).toMatchObject({
      origin: { kind: 'alternative', letter: 'B' },
      turns: 2,
      createdBy: 'u1',
    });
  });

  it('switches to a losing branch, whose history the next reply comes from', async () => {
    const core = await twoForks();
    await core.branches.switchTo(THREAD, 'b2', mod);
    await core.say('after switch');
    await core.turns.idle();
    const history = await core.history();
    expect(history.slice(0, 4)).toEqual([
      'u1: start',
      'reply to "u1: start" after 0 items',
      'u1: fork one',
      'reply to "u1: fork one" after 2 items',
    ]);
    expect(history.join('\n')).not.toContain('fork two');
    expect(core.presenter.notices.at(-1)).toMatchObject({
      kind: 'branch_action',
      action: { action: 'switch', branchId: 'b2', userId: 'mod' },
    });
    expect(core.audits.map((a) => a.action)).toEqual(['switch']);
  });

  it('resets: undoes the last fork, then goes back to a fork point, then starts afresh', async () => {
    const core = await twoForks();
    await core.branches.reset(THREAD, undefined, mod);
    expect((await core.sessions.get(THREAD))!.activeBranchId).toBe('b3');
    await core.branches.reset(THREAD, 'b3', mod);
    expect(await core.history()).toEqual(['u1: start', 'reply to "u1: start" after 0 items']);
    await core.branches.reset(THREAD, 'root', mod);
    expect(await core.history()).toEqual([]);
    await core.say('fresh');
    await core.turns.idle();
    expect(await core.history()).toEqual(['u1: fresh', 'reply to "u1: fresh" after 0 items']);
  });

  it('prunes inactive branches and releases their conversations, keeping the active line', async () => {
    const core = await twoForks();
    await core.branches.switchTo(THREAD, 'b5', mod);
    await core.say('on b5');
    await core.turns.idle();
    await core.branches.switchTo(THREAD, 'b4', mod);
    const action = await core.branches.prune(THREAD, mod);
    expect(action).toMatchObject({ action: 'prune', branchIds: ['b2', 'b5'] });
    expect(Object.keys((await core.sessions.get(THREAD))!.branches)).toEqual(['b1', 'b3', 'b4']);
    expect(core.backend.calls.filter((c) => c.method === 'release')).toHaveLength(1);
  });

  it('refuses members who are not moderators, and changes nothing', async () => {
    const core = await twoForks();
    const member = { userId: 'u1', isModerator: false };
    await expect(core.branches.switchTo(THREAD, 'b2', member)).rejects.toThrow(NotAllowedError);
    await expect(core.branches.reset(THREAD, undefined, member)).rejects.toThrow(NotAllowedError);
    await expect(core.branches.prune(THREAD, member)).rejects.toThrow(NotAllowedError);
    await expect(core.branches.switchTo(THREAD, 'b99', mod)).rejects.toThrow(/no branch b99/);
    expect((await core.sessions.get(THREAD))!.activeBranchId).toBe('b4');
    expect(core.audits).toEqual([]);
  });

  it('cancels an open vote when a moderator switches', async () => {
    const core = await startedCore({ quorum: 5 });
    await core.say('start');
    await core.turns.idle();
    const vote = await core.ask({ count: 2, prompt: { messageId: 'p1', authorName: 'u1', text: 'fork' } });
    await core.branches.switchTo(THREAD, 'b2', mod);
    expect(await core.alternatives.getVote(vote.id)).toMatchObject({ status: 'cancelled' });
    expect((await core.sessions.get(THREAD))!.vote?.status).toBe('cancelled');
    expect(core.presenter.ballots.map((b) => b.status)).toEqual(['open', 'cancelled']);
  });
});
