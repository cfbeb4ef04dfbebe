import { lineage } from './branch-tree.ts';
import type { CoreDeps, HeldThread } from './deps.ts';
import { LockLostError } from './errors.ts';
import { branchOf, type Condensed, type Item, type ThreadSession } from './model.ts';
import type { GenerationOptions, HistoryView, Usage } from './ports.ts';

/**
 * Threads that live for months: what the model is sent once a branch's history outgrows its context window. The
 * oldest part of the history is condensed into one form (a summary the model writes, or the provider's compaction)
 * that later turns send instead of it; the latest turns always go verbatim. The condensed form lives in the branch's
 * record, is inherited by forks, and is written by the same fenced update as everything else under the thread's lock.
 */

/** Tokens a message costs besides its text (role and separators), in the estimate. */
const MESSAGE_OVERHEAD_TOKENS = 4;
/** What an image costs in the estimate: OpenAI bills a 1024x1024 image at `auto` detail about 765 tokens. */
const IMAGE_TOKENS = 800;
/** What an opaque compaction item is assumed to cost (its text is encrypted; OpenAI's are a few hundred tokens). */
const COMPACTION_ITEM_TOKENS = 512;

/**
 * A rough token count of a text: a token is about 4 characters of English text, plus a few for the message's framing.
 * No tokenizer of the served model is at hand, so this only has to be in the right range; thresholds leave room for
 * the reply and the estimate's error.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + MESSAGE_OVERHEAD_TOKENS;
}

/** The estimate of one item: its text and its images. */
export function itemTokens(item: Item): number {
  const images = item.parts?.filter((part) => part.kind === 'image').length ?? 0;
  return estimateTokens(item.text) + images * IMAGE_TOKENS;
}

/** The estimate of a condensed form. */
export function condensedTokens(condensed: Condensed | undefined): number {
  if (!condensed) return 0;
  const items = condensed.items ?? [];
  return (
    (condensed.text ? estimateTokens(condensed.text) : 0) +
    items.reduce(
      (sum, item) =>
        sum +
        (item.type === 'compaction'
          ? COMPACTION_ITEM_TOKENS
          : estimateTokens(JSON.stringify(item.content ?? ''))),
      0,
    )
  );
}

/**
 * The condensed form that stands for the oldest part of `branchId`'s history: the one recorded deepest in its
 * lineage (root first, so a fork's own outranks what it inherited) that covers no more than the history it shares.
 */
export function condensedOf(session: ThreadSession, branchId: string): Condensed | undefined {
  let found: Condensed | undefined;
  let offset = 0;
  for (const { branch, take } of lineage(session, branchId)) {
    const reach = offset + take;
    found = within(branch.condensed, reach) ?? found;
    offset = reach;
  }
  return found;
}

/** A condensed form that covers at most `length` items: itself, or the one it replaced. */
function within(condensed: Condensed | undefined, length: number): Condensed | undefined {
  if (!condensed) return undefined;
  if (condensed.covers <= length) return condensed;
  return condensed.earlier && condensed.earlier.covers <= length ? condensed.earlier : undefined;
}

/** A new condensed form for a branch whose current one is `current`: it keeps that one (alone) as `earlier`. */
export function replacing(current: Condensed | undefined, next: Omit<Condensed, 'earlier'>): Condensed {
  if (!current) return next;
  const { earlier: _older, ...previous } = current;
  return { ...next, earlier: previous };
}

/** `history` with what stands for its oldest part (the earlier form, or none, when it covers more than it holds). */
export function withCondensed(history: HistoryView, condensed: Condensed | undefined): HistoryView {
  const kept = within(condensed, history.length);
  return { length: history.length, condensed: kept, read: (start) => history.read(start) };
}

/** A branch's history as the model is to see it: its log, with its condensed form. */
export function contextView(
  deps: Pick<CoreDeps, 'log'>,
  session: ThreadSession,
  branchId: string,
): HistoryView {
  return withCondensed(deps.log.view(session, branchId), condensedOf(session, branchId));
}

/**
 * Items of a history from `start` (at least where its condensed form ends) as they are to be sent. An item older than
 * the condensed form's making loses its response id: the provider's chain through it holds the raw history, which is
 * what the condensed form replaces, so a backend must not continue it.
 */
export function sendable(history: HistoryView, start: number, items: readonly Item[]): Item[] {
  const madeAt = history.condensed?.madeAt ?? 0;
  return items.map((item, i) => {
    if (start + i >= madeAt || !item.responseId) return item;
    const { responseId: _stale, ...rest } = item;
    return rest;
  });
}

/** The condensed form and the items after it: what a backend sends for a whole history. */
export async function contextItems(
  history: HistoryView,
): Promise<{ condensed: Condensed | undefined; items: Item[] }> {
  const start = history.condensed?.covers ?? 0;
  return { condensed: history.condensed, items: sendable(history, start, await history.read(start)) };
}

/** The estimated tokens of a request: instructions, condensed form, the items after it, the input. */
async function contextTokens(
  history: HistoryView,
  input: readonly Item[],
  options: GenerationOptions,
): Promise<{ tokens: number; items: Item[] }> {
  const { condensed, items } = await contextItems(history);
  const tokens =
    (options.instructions ? estimateTokens(options.instructions) : 0) +
    condensedTokens(condensed) +
    [...items, ...input].reduce((sum, item) => sum + itemTokens(item), 0);
  return { tokens, items };
}

/**
 * Where the verbatim tail starts: the earliest turn start (a user item after an assistant one) from which the items
 * to the end cost at most `keep` tokens; always leaves at least the last turn out of the fold, unless `all`.
 */
export function tailStart(items: readonly Item[], keep: number, all: boolean): number {
  let cost = 0;
  let start = items.length;
  for (let i = items.length - 1; i >= 0; i -= 1) {
    cost += itemTokens(items[i]!);
    const turnStart = items[i]!.role === 'user' && (i === 0 || items[i - 1]!.role === 'assistant');
    if (!turnStart) continue;
    if (cost > keep && (all || start < items.length)) break;
    start = i;
  }
  return start;
}

export interface Prepared {
  session: ThreadSession;
  /** The branch's history as the model is to see it. */
  history: HistoryView;
  /** Generations spent condensing, to count like any other. */
  used: { model: string; usage: Usage }[];
}

/**
 * Before a turn on `branchId`: when its context (condensed form, items after it, the input) passes the model's
 * threshold, or when `force` (the provider refused the context as too long), the oldest part is folded into the
 * condensed form, keeping the latest turns verbatim. The new form is written by one fenced update (a process that
 * lost its lock cannot write it), and the branch's provider state, which holds the raw history, is let go.
 */
export async function prepareContext(
  deps: CoreDeps,
  held: HeldThread,
  session: ThreadSession,
  branchId: string,
  input: readonly Item[],
  options: GenerationOptions,
  {
    force = false,
    limit,
  }: {
    /** The provider refused the context as too long: condense now, whatever the estimate says. */
    force?: boolean;
    /** What the provider said it reads and was sent, in its tokens (it may count very differently from the estimate). */
    limit?: { window: number; sent: number } | undefined;
  } = {},
): Promise<Prepared> {
  const history = contextView(deps, session, branchId);
  const policy = deps.context;
  const unchanged = { session, history, used: [] };
  if (!policy || policy.mode === 'off') return unchanged;
  // The provider compacts by itself (`compactThreshold`); the bot condenses only when it refused the context.
  if (!force && policy.mode === 'auto' && deps.backend.serverCompaction) return unchanged;
  const { tokens, items } = await contextTokens(history, input, options);
  if (!force && tokens <= policy.thresholdOf(options.model)) return unchanged;
  const from = history.condensed?.covers ?? 0;
  // The window in the estimate's units: the table's; after a refusal that named the real window, that one scaled by
  // how the estimate compares with the provider's count of what was sent (a small model's tokenizer may count four
  // times as many tokens as the estimate); after one that did not (OpenAI's), what was sent, since the provider
  // reads less than that whatever the table says.
  const tableWindow = policy.windowOf(options.model);
  const refusedAt = limit && limit.sent > 0 ? Math.floor((limit.window * tokens) / limit.sent) : tokens;
  const window = force ? Math.max(1, Math.min(tableWindow, refusedAt)) : tableWindow;
  const scale = window / tableWindow;
  const keep = Math.floor((policy.keepOf(options.model) * scale) / (force ? 2 : 1));
  const fold = tailStart(items, keep, force);
  if (fold === 0) return unchanged;

  // Folded in slices that each fit the model with room to spare, so a long backlog (the first condensing of a thread
  // from before, a forced one) never asks for more than the model reads.
  const summaryTokens = Math.max(32, Math.floor(policy.summaryOf(options.model) * scale));
  const slice = Math.max(64, Math.floor(window / 2) - summaryTokens);
  let condensed = history.condensed;
  const used: Prepared['used'] = [];
  const mode = policy.mode === 'summary' || !deps.backend.serverCompaction ? 'summary' : 'compaction';
  for (let at = 0; at < fold; ) {
    let end = at;
    for (let cost = 0; end < fold && (end === at || cost + itemTokens(items[end]!) <= slice); end += 1)
      cost += itemTokens(items[end]!);
    const made = await deps.backend.condense({
      previous: condensed,
      items: items.slice(at, end),
      how: mode,
      options,
      maxTokens: summaryTokens,
      signal: held.signal,
    });
    used.push({ model: options.model, usage: made.usage });
    condensed = {
      kind: made.kind,
      text: made.text,
      ...(made.items ? { items: made.items } : {}),
      covers: from + end,
      madeAt: history.length,
      by: 'model',
      at: deps.clock.now(),
    };
    at = end;
  }
  if (held.lease.signal.aborted) throw new LockLostError();
  const made = condensed!;
  const before = branchOf(session, branchId)!;
  const next = await held.update((s) => {
    const branch = branchOf(s, branchId)!;
    if (branch.ownItems !== before.ownItems) throw new LockLostError();
    return {
      ...s,
      condensedNoticed: true,
      branches: {
        ...s.branches,
        [branchId]: { ...branch, condensed: replacing(history.condensed, made), provider: undefined },
      },
    };
  });
  deps.logger.info(
    { threadId: held.threadId, branchId, kind: made.kind, covers: made.covers, tokensBefore: tokens },
    'condensed the oldest part of a branch',
  );
  await letGo(deps, held.threadId, before.provider);
  if (!session.condensedNoticed) await tellOnce(deps, held.threadId, made.kind);
  return { session: next, history: contextView(deps, next, branchId), used };
}

/** The provider compacted the context during a turn: the branch's record keeps its items. */
export function recordCompaction(
  session: ThreadSession,
  branchId: string,
  items: Record<string, unknown>[],
  covers: number,
  at: number,
): ThreadSession {
  const branch = branchOf(session, branchId)!;
  const current = condensedOf(session, branchId);
  return {
    ...session,
    condensedNoticed: true,
    branches: {
      ...session.branches,
      [branchId]: {
        ...branch,
        // Made in the provider's own state: that state is continued, not replaced (`madeAt` is where it starts).
        condensed: replacing(current, {
          kind: 'compaction',
          text: '',
          items,
          covers,
          madeAt: covers,
          by: 'provider',
          at,
        }),
      },
    },
  };
}

/** Tells the thread that older messages are condensed from now on (once per thread). */
export async function tellOnce(
  deps: Pick<CoreDeps, 'presenter' | 'logger'>,
  threadId: string,
  how: Condensed['kind'],
): Promise<void> {
  try {
    await deps.presenter.notice(threadId, { kind: 'history_condensed', how });
  } catch (error) {
    deps.logger.warn({ err: error, threadId }, 'could not tell the thread its history is condensed');
  }
}

async function letGo(
  deps: Pick<CoreDeps, 'backend' | 'logger'>,
  threadId: string,
  provider: Record<string, string> | undefined,
): Promise<void> {
  if (!provider) return;
  await deps.backend
    .release(provider)
    .catch((error: unknown) =>
      deps.logger.warn({ err: error, threadId }, 'could not release provider state replaced by a summary'),
    );
}

/** What a moderator sees of a branch's condensed form. */
export interface CondensedView {
  branchId: string;
  kind: Condensed['kind'] | undefined;
  /** The summary's text (empty for a compaction: it is opaque). */
  text: string;
  covers: number;
  historyLength: number;
  by: Condensed['by'] | undefined;
  at: number | undefined;
}

export function condensedView(deps: Pick<CoreDeps, 'log'>, session: ThreadSession): CondensedView {
  const branchId = session.activeBranchId;
  const condensed = condensedOf(session, branchId);
  return {
    branchId,
    kind: condensed?.kind,
    text: condensed?.text ?? '',
    covers: condensed?.covers ?? 0,
    historyLength: deps.log.view(session, branchId).length,
    by: condensed?.by,
    at: condensed?.at,
  };
}

/**
 * A moderator's reset of the active branch's condensed form: what it stood for is forgotten (an empty summary
 * covers it), and the latest turns go on verbatim; the next condensing starts a fresh summary. Provider state that
 * holds the old form is let go. Returns undefined when there was nothing to reset.
 */
export async function resetCondensed(deps: CoreDeps, held: HeldThread): Promise<Condensed | undefined> {
  const session = await held.read();
  const branchId = session.activeBranchId;
  const current = condensedOf(session, branchId);
  if (!current) return undefined;
  const length = deps.log.view(session, branchId).length;
  const reset: Condensed = {
    kind: 'summary',
    text: '',
    covers: current.covers,
    madeAt: length,
    by: 'reset',
    at: deps.clock.now(),
  };
  const provider = branchOf(session, branchId)!.provider;
  await held.update((s) => {
    const branch = branchOf(s, branchId)!;
    return {
      ...s,
      branches: { ...s.branches, [branchId]: { ...branch, condensed: reset, provider: undefined } },
    };
  });
  await letGo(deps, held.threadId, provider);
  return reset;
}

/** How a summary reaches the model: one message right after the instructions. */
export function summaryMessage(condensed: Condensed): string {
  return condensed.text
    ? `Summary of the earlier part of this conversation (its messages are no longer shown):\n${condensed.text}`
    : 'The earlier part of this conversation is no longer shown.';
}

/** What the model is asked when it writes a summary: instructions, and one message holding what to fold. */
export function summaryRequest(
  previous: Condensed | undefined,
  items: readonly Item[],
  maxTokens: number,
): { instructions: string; text: string } {
  const words = Math.max(30, Math.floor(maxTokens * 0.7));
  const transcript = items.map((item) => `${item.role === 'user' ? 'user' : 'you'}: ${item.text}`).join('\n');
  return {
    instructions:
      'You keep the memory of a long conversation in a Discord thread. Write a summary of it for your own later ' +
      'use: who the people are, what they asked and decided, facts and promises worth keeping, open questions. ' +
      `Merge it with the earlier summary if there is one. At most ${words} words. Write only the summary.`,
    text: [
      previous?.text ? `Earlier summary:\n${previous.text}` : undefined,
      `Conversation to add to it:\n${transcript}`,
    ]
      .filter(Boolean)
      .join('\n\n'),
  };
}
