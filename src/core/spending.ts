import { OverBudgetError, type Payer, type Reservation } from './budgets.ts';
import type { CoreDeps, HeldThread } from './deps.ts';
import { safely } from './deps.ts';
import type { Item, PendingMessage, ThreadSession } from './model.ts';
import { failMessages } from './turn.ts';

/**
 * Where turns and forks meet the budgets: one call before a generation, one `settle` after. Kept apart from turn.ts
 * and fork.ts so those only gain a line or two.
 */

const free: Reservation = { settle: async () => {} };

/** The person a batch of messages is charged to: the author of the last one. */
function payerOf(session: ThreadSession, batch: readonly PendingMessage[]): Payer {
  const last = batch.at(-1)!;
  return {
    guildId: session.guildId,
    userId: last.authorId,
    threadId: session.threadId,
    isModerator: last.moderator === true,
  };
}

const charsOf = (items: readonly Item[]) => items.reduce((sum, item) => sum + item.text.length, 0);

/**
 * Reserves a turn's spending. Over budget, the messages leave the inbox as failed (Retry brings them back) and the
 * thread gets a short notice instead of a reply; then undefined is returned and the turn must not run.
 */
export async function reserveTurn(
  deps: CoreDeps,
  held: HeldThread,
  session: ThreadSession,
  batch: readonly PendingMessage[],
  input: readonly Item[],
): Promise<Reservation | undefined> {
  if (!deps.budgets) return free;
  const payer = payerOf(session, batch);
  try {
    const tokens = await deps.budgets.estimate(session.threadId, charsOf(input));
    return await deps.budgets.reserve(payer, tokens);
  } catch (error) {
    if (!(error instanceof OverBudgetError)) throw error;
    await refuseOverBudget(deps, held, batch, error);
    return undefined;
  }
}

/**
 * Reserves a fork's spending (`count` generations) for whoever asked. Over budget it throws OverBudgetError; messages
 * the fork was to answer (automatic alternatives) leave the inbox as failed, with a notice, first.
 */
export async function reserveFork(
  deps: CoreDeps,
  held: HeldThread,
  session: ThreadSession,
  request: {
    invokerId: string;
    isModerator: boolean;
    count: number;
    input: readonly Item[];
    answers: readonly PendingMessage[];
  },
): Promise<Reservation> {
  if (!deps.budgets || request.count <= 0) return free;
  const payer: Payer =
    request.answers.length > 0
      ? payerOf(session, request.answers)
      : {
          guildId: session.guildId,
          userId: request.invokerId,
          threadId: session.threadId,
          isModerator: request.isModerator,
        };
  try {
    const each = await deps.budgets.estimate(session.threadId, charsOf(request.input));
    return await deps.budgets.reserve(payer, each * request.count);
  } catch (error) {
    if (error instanceof OverBudgetError && request.answers.length > 0)
      await refuseOverBudget(deps, held, request.answers, error);
    throw error;
  }
}

async function refuseOverBudget(
  deps: CoreDeps,
  held: HeldThread,
  batch: readonly PendingMessage[],
  error: OverBudgetError,
): Promise<void> {
  const last = batch.at(-1)!;
  await held.update((s) => failMessages(s, batch));
  deps.telemetry.error({ kind: error.code });
  deps.logger.info(
    { threadId: held.threadId, userId: last.authorId, exceeded: error.exceeded },
    'message refused: over budget',
  );
  // One notice per person and window, so a flood of messages over budget is not answered by a flood of notices; but a
  // message someone retried always gets one, with a new Retry button (the click removed the old one).
  const retried = batch.some((m) => m.attempts > 0);
  const tell =
    retried || !deps.abuse || (await deps.abuse.takeNotice(held.threadId, last.authorId, 'budget'));
  if (!tell) return;
  await safely(deps, { threadId: held.threadId, what: 'tell the thread about a budget' }, () =>
    deps.presenter.notice(held.threadId, {
      kind: 'over_budget',
      messageId: last.messageId,
      userId: last.authorId,
      exceeded: error.exceeded,
      retry: true,
    }),
  );
}

/** Settles a reservation; a store failure is logged, never allowed to fail the reply that already happened. */
export async function settle(
  deps: Pick<CoreDeps, 'logger'>,
  threadId: string,
  reservation: Reservation,
  used: Parameters<Reservation['settle']>[0],
): Promise<void> {
  await reservation
    .settle(used)
    .catch((error: unknown) => deps.logger.warn({ err: error, threadId }, 'could not record token usage'));
}
