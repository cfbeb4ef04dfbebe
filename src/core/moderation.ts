import { referencedBlobs } from './attachments.ts';
import { prunableBranches } from './branch-tree.ts';
import type { CoreDeps, HeldThread } from './deps.ts';
import { safely } from './deps.ts';
import { BadInputError, NotFoundError } from './errors.ts';
import { type Branch, type BranchOrigin, branchOf, type ThreadSession } from './model.ts';
import type { BranchAction } from './ports.ts';
import { refreshBallot } from './vote-jobs.ts';
import { supersedeVote } from './votes.ts';

export type ModeratorRequest =
  | { action: 'switch'; branchId: string }
  | { action: 'reset'; to: string | undefined }
  | { action: 'prune' };

function requireBranch(session: ThreadSession, branchId: string): Branch {
  const branch = branchOf(session, branchId);
  if (!branch) {
    // The id is what a person typed, of any length: repeat only its start.
    const shown = branchId.length > 40 ? `${branchId.slice(0, 39)}…` : branchId;
    throw new NotFoundError(`There is no branch ${shown} in this thread; /branch list shows them.`);
  }
  return branch;
}

function newBranch(
  session: ThreadSession,
  fields: { parentId: string | undefined; forkPoint: number; origin: BranchOrigin },
  userId: string,
  at: number,
): Branch {
  return {
    id: `b${session.nextBranchNumber}`,
    createdBy: userId,
    createdAt: at,
    ownItems: 0,
    provider: undefined,
    ...fields,
  };
}

/** Makes `branchId` (new or existing) the active branch, remembering the one before for /branch reset. */
function activate(session: ThreadSession, branchId: string, at: number, added?: Branch): ThreadSession {
  return {
    ...session,
    branches: added ? { ...session.branches, [added.id]: added } : session.branches,
    nextBranchNumber: added ? session.nextBranchNumber + 1 : session.nextBranchNumber,
    activeBranchId: branchId,
    forkHistory: [...session.forkHistory, { before: session.activeBranchId, at }],
  };
}

/**
 * The pure part of a moderator's switch or reset: the new record (the live vote superseded in the same update, so
 * nothing can undo the moderator's choice afterwards) and what happened.
 */
export function moveThread(
  session: ThreadSession,
  request: Exclude<ModeratorRequest, { action: 'prune' }>,
  userId: string,
  at: number,
): { session: ThreadSession; action: BranchAction } {
  const s = supersedeVote(session);
  const who = { threadId: s.threadId, userId };
  if (request.action === 'switch') {
    const target = requireBranch(s, request.branchId);
    if (target.id === s.activeBranchId) throw new BadInputError(`The thread is already on ${target.id}.`);
    // A branch without a conversation of its own gets one (a batched copy) on its next turn.
    return { session: activate(s, target.id, at), action: { ...who, action: 'switch', branchId: target.id } };
  }
  if (request.to === undefined) {
    const last = s.forkHistory.at(-1);
    if (!last || !branchOf(s, last.before))
      throw new BadInputError('There is no fork to undo in this thread.');
    return {
      session: { ...s, activeBranchId: last.before, forkHistory: s.forkHistory.slice(0, -1) },
      action: { ...who, action: 'reset', to: 'last_fork', branchId: last.before },
    };
  }
  if (request.to === 'root') {
    const root = newBranch(
      s,
      { parentId: undefined, forkPoint: 0, origin: { kind: 'reset', to: undefined } },
      userId,
      at,
    );
    return {
      session: activate(s, root.id, at, root),
      action: { ...who, action: 'reset', to: 'root', branchId: root.id },
    };
  }
  const target = requireBranch(s, request.to);
  const branch = newBranch(
    s,
    { parentId: target.parentId, forkPoint: target.forkPoint, origin: { kind: 'reset', to: target.id } },
    userId,
    at,
  );
  return {
    session: activate(s, branch.id, at, branch),
    action: { ...who, action: 'reset', to: 'fork_point', of: target.id, branchId: branch.id },
  };
}

/** Runs a moderator's action on the thread's worker (so it waits for a running reply, and nothing runs beside it). */
export async function moderate(
  deps: CoreDeps,
  held: HeldThread,
  request: ModeratorRequest,
  userId: string,
): Promise<BranchAction> {
  const before = await held.read();
  let action: BranchAction;
  if (request.action === 'prune') {
    const doomed = prunableBranches(before);
    if (doomed.length === 0) throw new BadInputError('There are no inactive branches to prune.');
    const ids = new Set(doomed.map((b) => b.id));
    // First out of the record (so nothing can use them), then their provider state and items.
    await held.update((s) => ({
      ...s,
      branches: Object.fromEntries(Object.entries(s.branches).filter(([id]) => !ids.has(id))),
      forkHistory: s.forkHistory.filter((f) => !ids.has(f.before)),
    }));
    for (const branch of doomed) {
      if (branch.provider)
        await deps.backend
          .release(branch.provider)
          .catch((error: unknown) =>
            deps.logger.warn(
              { err: error, threadId: held.threadId, branchId: branch.id },
              'could not release a branch',
            ),
          );
      await deps.log.deleteBranch(held.threadId, branch.id, branch.ownItems);
    }
    await sweepAttachments(deps, held);
    action = { threadId: held.threadId, userId, action: 'prune', branchIds: doomed.map((b) => b.id) };
  } else {
    let result: BranchAction | undefined;
    await held.update((s) => {
      const moved = moveThread(s, request, userId, deps.clock.now());
      result = moved.action;
      return moved.session;
    });
    action = result!;
    if (before.vote?.status === 'open' || before.vote?.status === 'generating')
      await refreshBallot(deps, held.threadId);
  }
  deps.logger.info({ ...action }, 'branch action');
  await safely(deps, { threadId: held.threadId, what: 'tell the thread about a branch action' }, () =>
    deps.presenter.notice(held.threadId, { kind: 'branch_action', action }),
  );
  return action;
}

/** Drops the images and files that only pruned branches held (see attachments.ts); a failure only leaves them. */
async function sweepAttachments(deps: CoreDeps, held: HeldThread): Promise<void> {
  if (!deps.attachments) return;
  try {
    const session = await held.read();
    await deps.attachments.sweep(held.threadId, await referencedBlobs(session, deps.log));
  } catch (error) {
    deps.logger.warn({ err: error, threadId: held.threadId }, 'could not sweep attachments');
  }
}
