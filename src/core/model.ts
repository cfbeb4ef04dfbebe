import type { BackendKind } from './ports.ts';

/** Version of every stored record's shape; a record of another version is migrated or refused, never misread. */
export const SCHEMA_VERSION = 1;

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
  /** Set when a person stopped the reply before it finished. */
  stopped?: boolean;
}

/** Provider-side state of a branch; opaque to the core, owned by at most one branch at a time. */
export type ProviderState = Record<string, string>;

/** One line of the conversation. */
export interface Branch {
  /** Short id people type: b1, b2, ... */
  id: string;
  parentId: string | undefined;
  /** How many of the parent's items this branch inherits. */
  forkPoint: number;
  /** What people see: "alternative B · funny travel buddy". */
  label: string;
  createdBy: string;
  createdAt: number;
  /** Number of items of its own (not inherited). */
  ownItems: number;
  provider: ProviderState | undefined;
}

/** Per-thread settings; moderators change them with /settings. */
export interface ThreadSettings {
  model: string;
  instructions: string | undefined;
  alternativesCount: number;
  /** 0: off; 2..5: every message gets that many alternatives and a vote. */
  autoAlternatives: number;
  alternativesEnabled: boolean;
  quorum: number;
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
}

/** A managed Discord thread. */
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
  openVoteId: string | undefined;
  /** The highest lock fencing token that wrote a turn; a lower one is a writer that lost its lock. */
  lockFence?: number;
  /** Branch active before each fork, most recent last, for /branch reset. */
  forkHistory: { before: string; voteId: string; at: number }[];
}

/** The stored items of one branch (its own, not inherited). */
export interface BranchItems {
  version: typeof SCHEMA_VERSION;
  items: Item[];
}
