import type { HistoryLog } from './history-log.ts';
import type {
  Branch,
  BranchOrigin,
  Item,
  PendingMessage,
  ThreadSession,
  ThreadSettings,
  Vote,
  VoteOption,
} from './model.ts';
import { SCHEMA_VERSION } from './model.ts';
import type { Store } from './ports.ts';

/** The records threadfork 0.1 stored (schema version 1), as far as migrating them needs. */
interface SessionV1 {
  version: 1;
  threadId: string;
  guildId: string | undefined;
  backend: ThreadSession['backend'];
  createdBy: string;
  createdAt: number;
  activeBranchId: string;
  branches: Record<string, Omit<Branch, 'origin'> & { label: string }>;
  nextBranchNumber: number;
  settings: ThreadSettings;
  inbox: PendingMessage[];
  failed: PendingMessage[];
  openVoteId: string | undefined;
  lockFence?: number;
  forkHistory: { before: string; at: number }[];
}

interface VoteV1
  extends Omit<Vote, 'options' | 'cancelReason' | 'answersMessageIds' | 'closedAt' | 'status'> {
  version: 1;
  status: 'generating' | 'open' | 'closed' | 'cancelled';
  closedAt?: number;
  options: (Omit<VoteOption, 'style' | 'model'> & { label: string })[];
}

/** Version 1 kept a branch's origin as the words people read; these are the shapes it wrote. */
export function originFromLabel(label: string): BranchOrigin {
  const alternative = /^alternative ([A-E]) · (.*)$/.exec(label);
  if (alternative)
    return {
      kind: 'alternative',
      letter: alternative[1]!,
      style: alternative[2] === 'default' ? undefined : alternative[2],
      model: undefined,
    };
  if (label === 'fresh start') return { kind: 'reset', to: undefined };
  const reset = /^reset to where (\S+) forked$/.exec(label);
  if (reset) return { kind: 'reset', to: reset[1] };
  return { kind: 'start' };
}

function voteFromV1(vote: VoteV1): Vote {
  return {
    id: vote.id,
    invokerId: vote.invokerId,
    parentBranchId: vote.parentBranchId,
    forkPoint: vote.forkPoint,
    options: vote.options.map(({ label, ...option }) => ({
      ...option,
      style: label === 'default' || label === 'current reply' ? undefined : label,
      model: undefined,
    })),
    ballots: vote.ballots,
    quorum: vote.quorum,
    blind: false,
    deadline: vote.deadline,
    // A closed v1 vote that is still the thread's open one was never applied.
    status: vote.status,
    winner: vote.winner,
    closedBy: vote.closedBy,
    closedAt: vote.closedAt,
    cancelReason: vote.status === 'cancelled' ? 'failed' : undefined,
    answersMessageIds: [],
    ballotMessageId: vote.ballotMessageId,
    createdAt: vote.createdAt,
  };
}

/**
 * Brings a thread saved by threadfork 0.1 to the current layout, so it keeps working: each branch's items move from
 * one record into the chunked log, its label becomes a structured origin, and its open vote moves into the thread's
 * record. Safe to run twice or in two processes at once: the log chunks get the same items, and the record is
 * replaced only while it is still version 1. The old records are deleted after.
 */
export async function migrateV1(store: Store, log: HistoryLog, legacy: SessionV1): Promise<void> {
  const threadId = legacy.threadId;
  const itemsKey = (branchId: string) => `items:${threadId}:${branchId}`;
  const branches: Record<string, Branch> = {};
  for (const { label, ...branch } of Object.values(legacy.branches)) {
    const items = (await store.get<{ items: Item[] }>(itemsKey(branch.id)))?.items ?? [];
    await log.write(threadId, branch.id, 0, items.slice(0, branch.ownItems), 0);
    branches[branch.id] = { ...branch, origin: originFromLabel(label) };
  }
  const vote = legacy.openVoteId ? await store.get<VoteV1>(`vote:${legacy.openVoteId}`) : undefined;
  const migrated: ThreadSession = {
    version: SCHEMA_VERSION,
    threadId,
    guildId: legacy.guildId,
    backend: legacy.backend,
    createdBy: legacy.createdBy,
    createdAt: legacy.createdAt,
    activeBranchId: legacy.activeBranchId,
    branches,
    nextBranchNumber: legacy.nextBranchNumber,
    settings: { ...legacy.settings, blind: false },
    inbox: legacy.inbox,
    failed: legacy.failed,
    vote: vote ? voteFromV1(vote) : undefined,
    activity: {},
    fence: 0,
    forkHistory: legacy.forkHistory.map(({ before, at }) => ({ before, at })),
  };
  await store.update<ThreadSession | SessionV1>(`thread:${threadId}`, (current) =>
    current?.version === 1 ? migrated : current,
  );
  await Promise.all(Object.keys(legacy.branches).map((id) => store.delete(itemsKey(id))));
  if (legacy.openVoteId) await store.delete(`vote:${legacy.openVoteId}`);
}

export type { SessionV1 };
