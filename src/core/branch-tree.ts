import { type Branch, branchOf, type ThreadSession } from './model.ts';

/**
 * Pure walks over a thread's branch tree. Every walk is a loop, never recursion: a thread where every vote adds a
 * level can be thousands of levels deep.
 */

/** The branches whose items make up `branchId`'s history, root first, each with how many own items it lends. */
export function lineage(session: ThreadSession, branchId: string): { branch: Branch; take: number }[] {
  const out: { branch: Branch; take: number }[] = [];
  const seen = new Set<string>();
  let limit = Number.POSITIVE_INFINITY;
  for (let branch = branchOf(session, branchId); branch && !seen.has(branch.id); ) {
    seen.add(branch.id);
    out.push({ branch, take: Math.max(0, Math.min(branch.ownItems, limit - branch.forkPoint)) });
    limit = Math.min(limit, branch.forkPoint);
    branch = branchOf(session, branch.parentId);
  }
  return out.reverse();
}

/** A branch and all its ancestors. */
export function ancestorsOf(session: ThreadSession, branchId: string): Set<string> {
  return new Set(lineage(session, branchId).map(({ branch }) => branch.id));
}

/** How many items a branch's whole history holds. */
export function historyLength(session: ThreadSession, branchId: string): number {
  return lineage(session, branchId).reduce((sum, { take }) => sum + take, 0);
}

export interface BranchView extends Branch {
  active: boolean;
  /** Turns (user messages) in the branch's whole history. */
  turns: number;
  depth: number;
}

const byNumber = (a: Branch, b: Branch) => Number(a.id.slice(1)) - Number(b.id.slice(1));

/** The branch tree, depth-first from the roots, each branch after its parent, siblings by number. */
export function branchViews(session: ThreadSession): BranchView[] {
  const children = new Map<string | undefined, Branch[]>();
  for (const branch of Object.values(session.branches)) {
    const parent = branchOf(session, branch.parentId) ? branch.parentId : undefined;
    const siblings = children.get(parent);
    if (siblings) siblings.push(branch);
    else children.set(parent, [branch]);
  }
  const out: BranchView[] = [];
  // An explicit stack instead of recursion; pushed in reverse so the lowest number comes out first.
  const stack: { branch: Branch; depth: number }[] = (children.get(undefined) ?? [])
    .sort(byNumber)
    .reverse()
    .map((branch) => ({ branch, depth: 0 }));
  const seen = new Set<string>();
  while (stack.length > 0) {
    const { branch, depth } = stack.pop()!;
    if (seen.has(branch.id)) continue;
    seen.add(branch.id);
    out.push({
      ...branch,
      active: branch.id === session.activeBranchId,
      turns: Math.ceil((branch.forkPoint + branch.ownItems) / 2),
      depth,
    });
    for (const child of (children.get(branch.id) ?? []).sort(byNumber).reverse())
      stack.push({ branch: child, depth: depth + 1 });
  }
  return out;
}

/** Branches prune would delete: not the active branch, not one of its ancestors, not part of a live vote. */
export function prunableBranches(session: ThreadSession): Branch[] {
  const keep = ancestorsOf(session, session.activeBranchId);
  const vote = session.vote;
  if (vote && (vote.status === 'open' || vote.status === 'generating' || vote.status === 'closed'))
    for (const option of vote.options) if (option.branchId) keep.add(option.branchId);
  return Object.values(session.branches).filter((branch) => !keep.has(branch.id));
}
