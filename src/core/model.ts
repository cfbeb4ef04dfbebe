/** Which provider API keeps a branch's history (see DESIGN.md, "Backends"). */
export const backendKinds = ['conversations', 'responses', 'chat'] as const;
export type BackendKind = (typeof backendKinds)[number];

/**
 * Version of every stored record's shape; a record of another version is migrated or refused, never misread.
 * 2: the vote lives in the thread's record, history is a chunked log, writes carry the lock's fence.
 * 3: items and waiting messages may carry `parts` (images, files) whose bytes are `blob:` records. A version 2
 * record is a valid version 3 one (the new fields are optional), so it is read as it is (see schema.ts).
 */
export const SCHEMA_VERSION = 3;

/** What an attachment is to the model. */
export type Part =
  | { kind: 'text'; text: string }
  /** An image; its bytes are the blob `blobId` (the sha256 of the bytes). `detail` unset: the backend's default. */
  | { kind: 'image'; blobId: string; mime: string; name: string; detail?: 'low' | 'high' | 'auto' }
  /** A document (PDF) sent to the model as a file input. */
  | { kind: 'file'; blobId: string; mime: string; name: string };

/** One message of a branch's history, as the bot records it (the provider may hold more, such as reasoning). */
export interface Item {
  /** Our own id, stable across providers. */
  id: string;
  role: 'user' | 'assistant';
  /** For a user item, the text the model sees, speaker included ("alice: hi"). */
  text: string;
  /** Discord message ids this item answers or came from, so a replayed message is recognised. */
  sourceMessageIds?: string[];
  /** The provider's response that produced this assistant item (responses backend chains from it). */
  responseId?: string;
  /** Set when the reply was stopped before it finished (a person's Stop, or a shutdown). */
  stopped?: boolean;
  /** Images and files sent with `text` (user items only); absent: text alone (every item before version 3). */
  parts?: Part[];
}

/** Provider-side state of a branch; opaque to the core, owned by at most one branch at a time. */
export type ProviderState = Record<string, string>;

/** One line of the conversation. */
export interface Branch {
  /** Short id people type: b1, b2, ... */
  id: string;
  parentId: string | undefined;
  /** How many items of the parent's history this branch inherits. */
  forkPoint: number;
  /** What the branch is, for people: where it came from. */
  origin: BranchOrigin;
  createdBy: string;
  createdAt: number;
  /** Number of items of its own (not inherited); the log may hold more (an unfinished write), never fewer. */
  ownItems: number;
  provider: ProviderState | undefined;
  /**
   * What stands for the oldest part of this branch's history (a rolling summary, or the provider's compaction), when
   * it was made on this branch; forks inherit it from their ancestors (see `condensedOf` in context.ts).
   */
  condensed?: Condensed;
}

/**
 * The oldest `covers` items of a branch's history, condensed: later turns send this instead of them. Kept in the
 * thread's record (so it is written by the same fenced update as the turn) and never grows with the thread.
 */
export interface Condensed {
  /** `summary`: written by the model itself (any server); `compaction`: the provider's opaque compaction items. */
  kind: 'summary' | 'compaction';
  /** The summary's text (empty after a moderator's reset: what it covered is forgotten). */
  text: string;
  /** For `compaction`: the provider's items, passed back as they came (OpenAI: output of `/responses/compact`). */
  items?: Record<string, unknown>[];
  /** How many items of the branch's history (from the first) it stands for. */
  covers: number;
  /**
   * The history's length when it was made: provider state from before (a response chain, a conversation) still
   * holds the raw history, so it is not continued; a compaction the provider made itself is already in that state.
   */
  madeAt: number;
  /** Who made it: the model's own summary or compaction, or a moderator's reset. */
  by: 'model' | 'provider' | 'reset';
  at: number;
  /**
   * The form it replaced, for forks at a point it does not reach ("answer again" right after a compaction that took
   * the answered message in): they go on from that one instead of the whole raw history. One level only.
   */
  earlier?: Omit<Condensed, 'earlier'>;
}

/** Why a branch exists; the Discord layer words it. */
export type BranchOrigin =
  | { kind: 'start' }
  | { kind: 'alternative'; letter: string; style: string | undefined; model: string | undefined }
  | { kind: 'reset'; to: string | undefined };

/** Per-thread settings; moderators change them with /settings. */
export interface ThreadSettings {
  model: string;
  instructions: string | undefined;
  alternativesCount: number;
  /** 0: off; 2..5: every message gets that many alternatives and a vote. */
  autoAlternatives: number;
  alternativesEnabled: boolean;
  /** Votes for one alternative that close a vote at once; 0: a majority of the people active in the thread. */
  quorum: number;
  /** Alternatives shown by letter only, in a shuffled order; their model and style are revealed when the vote closes. */
  blind: boolean;
  voteMs: number;
  /** Messages that arrive while a reply runs are answered together in one turn. */
  gatherMessages: boolean;
}

/** A message posted in a managed thread, waiting for (or in) its turn. */
export interface PendingMessage {
  messageId: string;
  authorId: string;
  authorName: string;
  text: string;
  receivedAt: number;
  /** How many times a turn for it was started; a start without an end means the process died during it. */
  attempts: number;
  /** In the failed list: the message whose Retry button brings this one back too (the last of its batch). */
  retryWith?: string;
  /** Its author was a moderator when it arrived (for BUDGET_EXEMPT_MODERATORS). */
  moderator?: boolean;
  /** Its images and files, already stored as blobs (text attachments are in `text`). */
  parts?: Part[];
}

export type CloseReason = 'quorum' | 'close' | 'deadline' | 'moderator';

/** One alternative on a ballot. */
export interface VoteOption {
  letter: string;
  /** The branch this alternative is (reserved while generating; undefined when it failed). */
  branchId: string | undefined;
  style: string | undefined;
  /** Set when the alternative uses another model than the thread's. */
  model: string | undefined;
  status: 'generating' | 'ok' | 'failed';
  error?: string;
  usage?: { inputTokens: number; outputTokens: number };
}

/**
 * A choice between alternatives, kept inside its thread's record. Its status only moves forward:
 * generating -> open -> closed -> applied, or to cancelled from any but applied. Only one vote per thread is live.
 */
export interface Vote {
  id: string;
  invokerId: string;
  /** The branch that was active when the fork was made. */
  parentBranchId: string;
  forkPoint: number;
  options: VoteOption[];
  /** userId -> letter. */
  ballots: Record<string, string>;
  quorum: number;
  /** Shown by letter only until the vote closes. */
  blind: boolean;
  deadline: number;
  status: 'generating' | 'open' | 'closed' | 'applied' | 'cancelled';
  winner: string | undefined;
  closedBy: { userId: string | undefined; reason: CloseReason } | undefined;
  closedAt: number | undefined;
  cancelReason: VoteCancelReason | undefined;
  /** The waiting messages this vote answers (automatic alternatives): they leave the inbox when it opens. */
  answersMessageIds: string[];
  ballotMessageId: string | undefined;
  createdAt: number;
}

export type VoteCancelReason = 'moderator' | 'restart' | 'all_failed' | 'failed';

/** A managed Discord thread: everything about it lives in this one record (its history's items aside). */
export interface ThreadSession {
  version: typeof SCHEMA_VERSION;
  threadId: string;
  guildId: string | undefined;
  backend: BackendKind;
  createdBy: string;
  createdAt: number;
  activeBranchId: string;
  branches: Record<string, Branch>;
  nextBranchNumber: number;
  settings: ThreadSettings;
  /** Messages waiting to be answered, oldest first. Persisted so a restart answers them. */
  inbox: PendingMessage[];
  /** Messages whose turn failed, kept so a Retry button can run them again. */
  failed: PendingMessage[];
  /**
   * Ids of the latest messages received (at most RECEIVED_KEPT): one delivered again after it left the inbox (two
   * processes on the guild's events while resharding) is not answered twice. Absent in threads saved before it.
   */
  received?: string[];
  /** The thread's latest vote, whatever its status. */
  vote: Vote | undefined;
  /** When each person last posted in the thread (the last half hour), for a vote's quorum. */
  activity: Record<string, number>;
  /** The fencing token of the lock holder that last claimed the thread; a writer with a lower one lost its lock. */
  fence: number;
  /** Branch active before each fork or switch, most recent last, for /branch reset. */
  forkHistory: { before: string; at: number }[];
  /** The thread was told that older messages are now summarised or compacted (it is told once). */
  condensedNoticed?: boolean;
}

/** A stored chunk of one branch's own items (`log:<thread>:<branch>:<n>` holds items n*CHUNK .. n*CHUNK+CHUNK-1). */
export interface LogChunk {
  version: typeof SCHEMA_VERSION;
  /** The fence of the writer, so a writer that lost its lock cannot overwrite a newer holder's items. */
  fence: number;
  items: Item[];
}

/** A branch by id, for ids that come from people: only the thread's own branches, never Object's properties. */
export function branchOf(session: ThreadSession, branchId: string | undefined): Branch | undefined {
  if (branchId === undefined || !Object.hasOwn(session.branches, branchId)) return undefined;
  return session.branches[branchId];
}

/** A thread's record as it starts: one root branch (or the given tree), nothing waiting, no vote. */
export function newThreadSession(fields: {
  threadId: string;
  guildId: string | undefined;
  backend: BackendKind;
  createdBy: string;
  createdAt: number;
  settings: ThreadSettings;
  branches?: Branch[];
  activeBranchId?: string;
}): ThreadSession {
  const root: Branch = {
    id: 'b1',
    parentId: undefined,
    forkPoint: 0,
    origin: { kind: 'start' },
    createdBy: fields.createdBy,
    createdAt: fields.createdAt,
    ownItems: 0,
    provider: undefined,
  };
  const branches = fields.branches ?? [root];
  return {
    version: SCHEMA_VERSION,
    threadId: fields.threadId,
    guildId: fields.guildId,
    backend: fields.backend,
    createdBy: fields.createdBy,
    createdAt: fields.createdAt,
    activeBranchId: fields.activeBranchId ?? root.id,
    branches: Object.fromEntries(branches.map((b) => [b.id, b])),
    nextBranchNumber: branches.length + 1,
    settings: fields.settings,
    inbox: [],
    failed: [],
    vote: undefined,
    activity: {},
    fence: 0,
    forkHistory: [],
  };
}
