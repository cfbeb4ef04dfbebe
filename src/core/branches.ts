import type { AlternativesService } from './alternatives.ts';
import { BadInputError, NotAllowedError, NotFoundError } from './errors.ts';
import type { Branch, ThreadSession } from './model.ts';
import type { Clock, LockService, Logger, ModelBackend, ThreadPresenter } from './ports.ts';
import type { SessionRepository } from './sessions.ts';

/** A moderator's action on a thread's branches, for the thread notice, the log and the audit channel. */
export interface BranchAction {
  action: 'switch' | 'reset' | 'prune';
  threadId: string;
  userId: string;
  summary: string;
}

export interface BranchView extends Branch {
  active: boolean;
  /** Turns (user messages) in the branch's whole history. */
  turns: number;
  depth: number;
}

export interface Moderator {
  userId: string;
  isModerator: boolean;
}

export interface BranchService {
  /** The branch tree, depth-first from the roots, each branch after its parent. */
  list(threadId: string): Promise<BranchView[]>;
  switchTo(threadId: string, branchId: string, by: Moderator): Promise<BranchAction>;
  /** No target: undo the most recent fork. A branch id: back to that branch's fork point. 'root': start afresh. */
  reset(threadId: string, to: string | undefined, by: Moderator): Promise<BranchAction>;
  /** Branches prune would delete: inactive and not an ancestor of the active branch. */
  prunable(threadId: string): Promise<BranchView[]>;
  prune(threadId: string, by: Moderator): Promise<BranchAction>;
}

export interface BranchDeps {
  sessions: SessionRepository;
  backend: ModelBackend;
  locks: LockService;
  presenter: ThreadPresenter;
  alternatives: AlternativesService;
  clock: Clock;
  logger: Logger;
  /** Where moderator actions are recorded besides the thread and the log (an audit channel). */
  audit(action: BranchAction): Promise<void>;
}

function ancestorsOf(session: ThreadSession, branchId: string): Set<string> {
  const seen = new Set<string>();
  for (let branch = session.branches[branchId]; branch && !seen.has(branch.id); ) {
    seen.add(branch.id);
    branch = branch.parentId ? session.branches[branch.parentId] : undefined;
  }
  return seen;
}

export function createBranchService(deps: BranchDeps): BranchService {
  const { sessions, backend, locks, presenter, alternatives, clock, logger } = deps;

  async function managed(threadId: string): Promise<ThreadSession> {
    const session = await sessions.get(threadId);
    if (!session) throw new BadInputError('This thread is not managed by threadfork.');
    return session;
  }

  function requireModerator(by: Moderator): void {
    if (!by.isModerator)
      throw new NotAllowedError('Only moderators (Manage Threads, or a moderator role) can change branches.');
  }

  function views(session: ThreadSession): BranchView[] {
    const children = new Map<string | undefined, Branch[]>();
    for (const branch of Object.values(session.branches)) {
      const parent = branch.parentId && session.branches[branch.parentId] ? branch.parentId : undefined;
      children.set(parent, [...(children.get(parent) ?? []), branch]);
    }
    const out: BranchView[] = [];
    const visit = (parentId: string | undefined, depth: number) => {
      const byNumber = (a: Branch, b: Branch) => Number(a.id.slice(1)) - Number(b.id.slice(1));
      for (const branch of (children.get(parentId) ?? []).sort(byNumber)) {
        const length = branch.forkPoint + branch.ownItems;
        out.push({
          ...branch,
          active: branch.id === session.activeBranchId,
          turns: Math.ceil(length / 2),
          depth,
        });
        visit(branch.id, depth + 1);
      }
    };
    visit(undefined, 0);
    return out;
  }

  /** Runs a change while no reply runs in the thread; an open vote is cancelled first. */
  async function change(
    threadId: string,
    by: Moderator,
    apply: (
      session: ThreadSession,
    ) => Promise<{ session: ThreadSession; summary: string; action: BranchAction['action'] }>,
  ): Promise<BranchAction> {
    requireModerator(by);
    await managed(threadId);
    return locks.withLock(`thread:${threadId}`, async () => {
      const session = await managed(threadId);
      if (session.openVoteId)
        await alternatives.cancelVote(session.openVoteId, 'A moderator changed the branch');
      const result = await apply((await sessions.get(threadId))!);
      const action: BranchAction = {
        action: result.action,
        threadId,
        userId: by.userId,
        summary: result.summary,
      };
      logger.info({ ...action }, 'branch action');
      await presenter.notice(threadId, `🌿 ${result.summary} by <@${by.userId}>.`);
      await deps
        .audit(action)
        .catch((error: unknown) => logger.warn({ err: error, threadId }, 'audit record failed'));
      return action;
    });
  }

  function activate(
    session: ThreadSession,
    branchId: string,
    extra: Record<string, Branch> = {},
  ): ThreadSession {
    return {
      ...session,
      branches: { ...session.branches, ...extra },
      activeBranchId: branchId,
      forkHistory: [
        ...session.forkHistory,
        { before: session.activeBranchId, voteId: `manual-${clock.now()}`, at: clock.now() },
      ],
    };
  }

  function newBranch(
    session: ThreadSession,
    fields: Pick<Branch, 'parentId' | 'forkPoint' | 'label'>,
    userId: string,
  ): Branch {
    return {
      id: `b${session.nextBranchNumber}`,
      createdBy: userId,
      createdAt: clock.now(),
      ownItems: 0,
      provider: undefined,
      ...fields,
    };
  }

  return {
    async list(threadId) {
      return views(await managed(threadId));
    },

    switchTo(threadId, branchId, by) {
      return change(threadId, by, async (session) => {
        const target = session.branches[branchId];
        if (!target)
          throw new NotFoundError(`There is no branch ${branchId} in this thread; /branch list shows them.`);
        if (target.id === session.activeBranchId)
          throw new BadInputError(`The thread is already on ${branchId}.`);
        // A branch without a conversation of its own gets one (a batched copy) on its next turn.
        const updated = await sessions.update(threadId, (s) => activate(s, branchId));
        return { session: updated, action: 'switch', summary: `Switched to ${branchId} (${target.label})` };
      });
    },

    reset(threadId, to, by) {
      return change(threadId, by, async (session) => {
        if (to === undefined) {
          const last = session.forkHistory.at(-1);
          if (!last || !session.branches[last.before])
            throw new BadInputError('There is no fork to undo in this thread.');
          const updated = await sessions.update(threadId, (s) => ({
            ...s,
            activeBranchId: last.before,
            forkHistory: s.forkHistory.slice(0, -1),
          }));
          return {
            session: updated,
            action: 'reset',
            summary: `Reset to ${last.before}, as before the last fork`,
          };
        }
        if (to === 'root') {
          const updated = await sessions.update(threadId, (s) => {
            const root = newBranch(s, { parentId: undefined, forkPoint: 0, label: 'fresh start' }, by.userId);
            return { ...activate(s, root.id, { [root.id]: root }), nextBranchNumber: s.nextBranchNumber + 1 };
          });
          return {
            session: updated,
            action: 'reset',
            summary: `Reset to a fresh start (${updated.activeBranchId})`,
          };
        }
        const target = session.branches[to];
        if (!target)
          throw new NotFoundError(`There is no branch ${to} in this thread; /branch list shows them.`);
        const updated = await sessions.update(threadId, (s) => {
          const branch = newBranch(
            s,
            { parentId: target.parentId, forkPoint: target.forkPoint, label: `reset to where ${to} forked` },
            by.userId,
          );
          return {
            ...activate(s, branch.id, { [branch.id]: branch }),
            nextBranchNumber: s.nextBranchNumber + 1,
          };
        });
        return {
          session: updated,
          action: 'reset',
          summary: `Reset to where ${to} forked (${updated.activeBranchId})`,
        };
      });
    },

    async prunable(threadId) {
      const session = await managed(threadId);
      // The active branch's ancestors hold part of its history; everything else can go.
      const keep = ancestorsOf(session, session.activeBranchId);
      return views(session).filter((b) => !keep.has(b.id));
    },

    prune(threadId, by) {
      return change(threadId, by, async (session) => {
        const keep = ancestorsOf(session, session.activeBranchId);
        const doomed = Object.values(session.branches).filter((b) => !keep.has(b.id));
        if (doomed.length === 0) throw new BadInputError('There are no inactive branches to prune.');
        for (const branch of doomed) if (branch.provider) await backend.release(branch.provider);
        const updated = await sessions.update(threadId, (s) => ({
          ...s,
          branches: Object.fromEntries(Object.entries(s.branches).filter(([id]) => keep.has(id))),
          forkHistory: s.forkHistory.filter((f) => keep.has(f.before)),
        }));
        await Promise.all(doomed.map((b) => sessions.deleteItems(threadId, b.id)));
        return {
          session: updated,
          action: 'prune',
          summary: `Pruned ${doomed.length} branch${doomed.length === 1 ? '' : 'es'} (${doomed.map((b) => b.id).join(', ')})`,
        };
      });
    },
  };
}
