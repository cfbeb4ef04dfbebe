import { randomUUID } from 'node:crypto';
import { withoutAttachments } from './attachments.ts';
import { promptCacheKey } from './cache-key.ts';
import { contextView, type Prepared, prepareContext, recordCompaction, tellOnce } from './context.ts';
import { type CoreDeps, type HeldThread, safely } from './deps.ts';
import { BotError, ContextTooLongError, LockLostError, UpstreamError } from './errors.ts';
import {
  branchOf,
  type Item,
  type PendingMessage,
  type ProviderState,
  type ThreadSession,
  type ThreadSettings,
} from './model.ts';
import type { GenerationOptions, ModelBackend, ReplyHandle, ReplyOutcome } from './ports.ts';
import { reserveTurn, settle } from './spending.ts';
import { createThinkFilter } from './strip-think.ts';

/** A process that died during a turn is tried again this many times before the message is marked failed. */
const MAX_ATTEMPTS = 3;
/** Failed messages kept for the Retry button. */
const MAX_FAILED = 20;

/** The user item a batch of waiting messages becomes. */
export function userItemOf(batch: readonly PendingMessage[]): Item {
  return {
    id: randomUUID(),
    role: 'user',
    text: batch.map((m) => m.text).join('\n\n'),
    sourceMessageIds: batch.map((m) => m.messageId),
    ...(batch.some((m) => m.parts?.length) ? { parts: batch.flatMap((m) => m.parts ?? []) } : {}),
  };
}

export function generationOptions(
  settings: ThreadSettings,
  overrides: {
    model?: string | undefined;
    style?: string | undefined;
    temperature?: number | undefined;
    cacheKey?: string | undefined;
  } = {},
) {
  const instructions = [settings.instructions, overrides.style].filter(Boolean).join('\n\n') || undefined;
  return {
    model: overrides.model ?? settings.model,
    instructions,
    temperature: overrides.temperature,
    cacheKey: overrides.cacheKey,
  };
}

/**
 * A generation's options with the thread's context handling: the provider's own compaction, at the model's
 * threshold, where the backend has it and the bot is not told to summarise instead.
 */
export function withContext(deps: Pick<CoreDeps, 'backend' | 'context'>, options: GenerationOptions) {
  const policy = deps.context;
  if (policy?.mode !== 'auto' || !deps.backend.serverCompaction) return options;
  // OpenAI takes no threshold under 1,000 tokens.
  return { ...options, compactThreshold: Math.max(1000, policy.thresholdOf(options.model)) };
}

/** Any error as the BotError a person is shown. */
export function shownError(error: unknown, fallback = 'Something went wrong while answering.'): BotError {
  return error instanceof BotError
    ? error
    : new UpstreamError('unavailable', fallback, { retryable: true, cause: error });
}

/** Moves messages out of the inbox into the failed list, where a Retry button can queue them again. */
export function failMessages(session: ThreadSession, batch: readonly PendingMessage[]): ThreadSession {
  const ids = new Set(batch.map((m) => m.messageId));
  return {
    ...session,
    inbox: session.inbox.filter((m) => !ids.has(m.messageId)),
    failed: [
      ...session.failed.filter((m) => !ids.has(m.messageId)),
      // The Retry button sits on the batch's last message: it brings the whole batch back.
      ...batch.map((m) => ({ ...m, attempts: 0, retryWith: batch.at(-1)!.messageId })),
    ].slice(-MAX_FAILED),
  };
}

/**
 * One turn: answers a batch of waiting messages on the active branch. The reply's items are written to the log
 * first; the commit (the branch's item count, its provider state and the inbox) is one fenced update, so a process
 * that dies or loses its lock in between leaves no half-answered message: the next holder answers it again.
 */
export async function answerBatch(deps: CoreDeps, held: HeldThread, batch: PendingMessage[]): Promise<void> {
  const { backend, presenter, running, logger, log, telemetry, clock } = deps;
  const { threadId } = held;
  const ids = new Set(batch.map((m) => m.messageId));
  const startedAt = clock.now();
  let session = await held.update((s) => ({
    ...s,
    inbox: s.inbox.map((m) => (ids.has(m.messageId) ? { ...m, attempts: m.attempts + 1 } : m)),
  }));
  let branch = branchOf(session, session.activeBranchId)!;
  const last = batch.at(-1)!;
  const report = (outcome: 'done' | 'stopped' | 'failed', firstTokenAt: number | undefined) =>
    telemetry.turn({
      backend: backend.kind,
      model: session.settings.model,
      outcome,
      queueWaitMs: Math.max(0, startedAt - Math.min(...batch.map((m) => m.receivedAt))),
      firstTokenMs: firstTokenAt === undefined ? undefined : firstTokenAt - startedAt,
      totalMs: clock.now() - startedAt,
    });

  if (batch.some((m) => m.attempts + 1 > MAX_ATTEMPTS)) {
    const error = new BotError('interrupted', 'The bot stopped several times while answering this message.');
    await held.update((s) => failMessages(s, batch));
    report('failed', undefined);
    telemetry.error({ kind: error.code });
    const handle = await presenter
      .startReply(threadId, {
        turnId: randomUUID(),
        alternative: undefined,
        replyToMessageId: last.messageId,
      })
      .catch(() => undefined);
    if (handle)
      await show(deps, threadId, handle, { kind: 'failed', text: '', error, retryMessageId: last.messageId });
    return;
  }

  const userItem = userItemOf(batch);
  const spend = await reserveTurn(deps, held, session, batch, [userItem]);
  if (!spend) return report('failed', undefined);
  const turnId = randomUUID();
  const stop = running.start(
    turnId,
    batch.map((m) => m.authorId),
  );
  const signal = AbortSignal.any([stop, held.signal]);
  let handle: ReplyHandle;
  try {
    handle = await presenter.startReply(threadId, {
      turnId,
      alternative: undefined,
      replyToMessageId: last.messageId,
    });
  } catch (error) {
    running.end(turnId);
    await settle(deps, threadId, spend, []);
    // The thread cannot show a reply (archived, locked, no permission): keep the message for a retry.
    logger.error({ err: error, threadId }, 'cannot post the reply in the thread');
    await held.update((s) => failMessages(s, batch));
    report('failed', undefined);
    return;
  }
  const visible = createThinkFilter();
  let firstTokenAt: number | undefined;
  const options = withContext(
    deps,
    generationOptions(session.settings, { cacheKey: promptCacheKey(threadId) }),
  );
  /** Summaries made for this turn: they count like the reply. */
  const condensing: Prepared['used'] = [];
  /** Condenses the branch's oldest part when it is due (or `force`d); a failure leaves the history as it was. */
  const prepare = async (force: boolean, limit?: ContextTooLongError['limit']) => {
    const prepared = await prepareContext(deps, held, session, branch.id, [userItem], options, {
      force,
      limit,
    }).catch((error: unknown) => {
      if (error instanceof LockLostError || held.lease.signal.aborted) throw error;
      logger.warn({ err: error, threadId, branchId: branch.id }, 'could not condense the thread’s history');
      return undefined;
    });
    if (!prepared) return undefined;
    condensing.push(...prepared.used);
    session = prepared.session;
    branch = branchOf(session, branch.id)!;
    return prepared;
  };
  let history = contextView(deps, session, branch.id);
  let result: Awaited<ReturnType<ModelBackend['runTurn']>>;
  const run = (truncate: boolean) =>
    backend.runTurn({
      provider: branch.provider,
      history,
      input: [userItem],
      options: truncate ? { ...options, truncate } : options,
      signal,
      onDelta(delta) {
        firstTokenAt ??= clock.now();
        handle.update(visible.push(delta));
      },
      resumed: batch.some((m) => m.attempts > 0),
    });
  try {
    history = (await prepare(false))?.history ?? history;
    try {
      result = await run(false);
    } catch (error) {
      // The provider refused the context as too long (nothing was streamed): condense now, and try once more, with
      // the provider's truncation as the last safety net.
      if (!(error instanceof ContextTooLongError) || firstTokenAt !== undefined) throw error;
      const prepared = await prepare(true, error.limit);
      if (!prepared || prepared.history.condensed === history.condensed) throw error;
      history = prepared.history;
      result = await run(true);
    }
  } catch (error) {
    await settle(deps, threadId, spend, condensing);
    const shown = held.lease.signal.aborted ? new LockLostError() : shownError(error);
    logger.warn({ err: error, threadId, branchId: branch.id, code: shown.code }, 'turn failed');
    telemetry.error({ kind: shown.code });
    report('failed', firstTokenAt);
    // A lost lock leaves the messages to the new holder; anything else keeps them for the Retry button.
    if (!held.lease.signal.aborted) await held.update((s) => failMessages(s, batch)).catch(() => {});
    const retryMessageId = held.lease.signal.aborted ? undefined : last.messageId;
    await show(deps, threadId, handle, { kind: 'failed', text: visible.text, error: shown, retryMessageId });
    return;
  } finally {
    running.end(turnId);
  }
  await settle(deps, threadId, spend, [
    ...condensing,
    { model: session.settings.model, usage: result.usage },
  ]);
  const text = visible.text;
  if (held.lease.signal.aborted) {
    logger.warn(
      { threadId, fencingToken: held.lease.fencingToken },
      'lost the thread lock during a turn; leaving it',
    );
    report('failed', firstTokenAt);
    await show(deps, threadId, handle, {
      kind: 'failed',
      text,
      error: new LockLostError(),
      retryMessageId: undefined,
    });
    return;
  }
  const stoppedBy = result.stopped ? (stop.aborted ? 'person' : 'shutdown') : undefined;
  if (stoppedBy === 'shutdown' && !text) {
    // The grace ran out before the model wrote anything (a slow first token, a reasoning model): there is no reply
    // to keep, and an empty one would leave the message unanswered for good. It stays in the inbox for the next
    // process, as after a crash (this start counts as an attempt: the next one answers in a fresh conversation).
    // Provider state made for this attempt alone is no branch's: let it go.
    if (result.provider && !(branch.provider && sameProvider(branch.provider, result.provider)))
      await backend
        .release(result.provider)
        .catch((error: unknown) =>
          logger.warn(
            { err: error, threadId, branchId: branch.id },
            'could not release unused provider state',
          ),
        );
    report('stopped', firstTokenAt);
    await show(deps, threadId, handle, {
      kind: 'failed',
      text: '',
      error: new BotError(
        'shutting_down',
        'The bot restarted before it could answer; it answers once it is back.',
      ),
      retryMessageId: undefined,
    });
    return;
  }
  const reply: Item = {
    id: randomUUID(),
    role: 'assistant',
    text,
    ...(result.responseId ? { responseId: result.responseId } : {}),
    ...(stoppedBy ? { stopped: true } : {}),
  };
  try {
    // A model that refused the images got the text alone: the history records what it was sent.
    const sent = result.attachmentsDropped ? withoutAttachments([userItem])[0]! : userItem;
    await log.write(threadId, branch.id, branch.ownItems, [sent, reply], held.lease.fencingToken);
    await held.update((s) => {
      const current = branchOf(s, branch.id)!;
      if (current.ownItems !== branch.ownItems) throw new LockLostError();
      const next = {
        ...s,
        inbox: s.inbox.filter((m) => !ids.has(m.messageId)),
        branches: {
          ...s.branches,
          [branch.id]: { ...current, provider: result.provider, ownItems: current.ownItems + 2 },
        },
      };
      // The provider compacted while answering: its items stand for everything before the reply.
      return result.compaction
        ? recordCompaction(next, branch.id, result.compaction, history.length + 1, clock.now())
        : next;
    });
  } catch (error) {
    // The store went away after the model answered (Redis down), or the lock was lost: the reply says so instead
    // of looking finished. The messages stay in the inbox and are answered again.
    const shown = error instanceof BotError ? error : new BotError('store', 'The reply could not be saved.');
    report('failed', firstTokenAt);
    await show(deps, threadId, handle, { kind: 'failed', text, error: shown, retryMessageId: undefined });
    throw error;
  }
  // A resumed turn may have moved the branch to new provider state: the old one is no branch's any more
  // (released before the reply shows as finished, so whoever reads on finds one conversation per branch).
  if (branch.provider && !sameProvider(branch.provider, result.provider))
    await backend
      .release(branch.provider)
      .catch((error: unknown) =>
        logger.warn(
          { err: error, threadId, branchId: branch.id },
          'could not release replaced provider state',
        ),
      );
  for (const { model, usage } of [...condensing, { model: session.settings.model, usage: result.usage }]) {
    telemetry.tokens({ model, kind: 'input', count: usage.inputTokens });
    telemetry.tokens({ model, kind: 'output', count: usage.outputTokens });
  }
  report(stoppedBy ? 'stopped' : 'done', firstTokenAt);
  await show(
    deps,
    threadId,
    handle,
    stoppedBy
      ? { kind: 'stopped', text, by: stoppedBy }
      : { kind: 'done', text, usage: result.usage, refused: result.refused },
  );
  if (result.compaction && !session.condensedNoticed) await tellOnce(deps, threadId, 'compaction');
  if (result.attachmentsDropped)
    await safely(deps, { threadId, what: 'say the images were not sent' }, () =>
      presenter.notice(threadId, { kind: 'attachments_not_sent', reason: 'model_refused' }),
    );
}

function sameProvider(a: ProviderState, b: ProviderState | undefined): boolean {
  const keys = Object.keys(a);
  return b !== undefined && keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** Shows how a reply ended; a thread that cannot show it (archived, locked, deleted message) must not stop work. */
export async function show(
  deps: Pick<CoreDeps, 'logger'>,
  threadId: string,
  handle: ReplyHandle,
  outcome: ReplyOutcome,
): Promise<void> {
  try {
    await handle.finish(outcome);
  } catch (error) {
    deps.logger.error({ err: error, threadId, outcome: outcome.kind }, 'cannot show the reply in the thread');
  }
}
