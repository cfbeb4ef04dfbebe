import type { BudgetExceeded } from '../core/budgets.ts';
import type { CondensedView } from '../core/context.ts';
import type { Branch } from '../core/model.ts';
import type { BranchAction, Notice } from '../core/ports.ts';

/** What people read for the core's structured events: the one place the bot's words about branches live. */

/** "alternative B · funny · gpt-4.1", "start", "reset to where b3 forked". */
export function branchLabel(branch: Pick<Branch, 'origin'>): string {
  const origin = branch.origin;
  switch (origin.kind) {
    case 'start':
      return 'start';
    case 'alternative':
      return `alternative ${origin.letter} · ${alternativeLabel(origin)}`;
    case 'reset':
      return origin.to ? `reset to where ${origin.to} forked` : 'fresh start';
  }
}

/** What makes an alternative different: its style and model, or "default". */
export function alternativeLabel(alternative: {
  style: string | undefined;
  model: string | undefined;
}): string {
  return [alternative.style, alternative.model].filter(Boolean).join(' · ') || 'default';
}

/** A list of branch ids short enough for any message: the first few, then how many more. */
export function idList(ids: readonly string[], shown = 12): string {
  return ids.length <= shown
    ? ids.join(', ')
    : `${ids.slice(0, shown).join(', ')} and ${ids.length - shown} more`;
}

export function actionSummary(action: BranchAction): string {
  switch (action.action) {
    case 'switch':
      return `Switched to ${action.branchId}`;
    case 'prune':
      return `Pruned ${action.branchIds.length} branch${action.branchIds.length === 1 ? '' : 'es'} (${idList(action.branchIds)})`;
    case 'reset':
      if (action.to === 'last_fork') return `Reset to ${action.branchId}, as before the last fork`;
      if (action.to === 'root') return `Reset to a fresh start (${action.branchId})`;
      return `Reset to where ${action.of} forked (${action.branchId})`;
  }
}

const cancelText: Record<Extract<Notice, { kind: 'vote_cancelled' }>['reason'], string> = {
  moderator: 'A moderator changed the branch',
  restart: 'The bot restarted while it was generating alternatives; ask again with /alternatives',
  all_failed: 'Every alternative failed, so there is nothing to vote on; the thread goes on as before',
  failed: 'The alternatives could not be finished; the thread goes on as before',
};

export function noticeText(notice: Notice): string {
  switch (notice.kind) {
    case 'branch_action':
      return `🌿 ${actionSummary(notice.action)} by <@${notice.action.userId}>.`;
    case 'vote_cancelled': {
      // Automatic alternatives cancelled by a restart are made again for the same message: nothing to ask for.
      const why =
        notice.reason === 'restart' && notice.answeredAgain
          ? 'The bot restarted while it was generating alternatives; the message is answered again'
          : cancelText[notice.reason];
      return `🚫 The vote was cancelled: ${why}.`;
    }
    case 'over_budget':
      return `⛔ <@${notice.userId}>, this message was not answered: ${budgetText(notice.exceeded)}`;
    case 'message_refused':
      return notice.reason === 'rate_limited'
        ? `🐢 <@${notice.userId}>, you are posting faster than this thread allows; this message was not queued.${notice.retryAfterMs === undefined ? '' : ` You can post again in ${Math.ceil(notice.retryAfterMs / 1000)} s.`}`
        : `📥 <@${notice.userId}>, too many messages are already waiting in this thread; this one was not queued. Post it again once the bot has caught up.`;
    case 'attachments_not_sent':
      return '🖼️ This model cannot read images or files, so they were not sent; the text of the message was answered.';
    case 'history_condensed':
      return notice.how === 'summary'
        ? '🗜️ This thread has grown past what the model reads at once: from now on its oldest messages reach the model as a summary it keeps up to date; the latest ones go as they are. Moderators can see it or reset it with /summary.'
        : '🗜️ This thread has grown past what the model reads at once: from now on OpenAI compacts its oldest messages; the latest ones go as they are. Moderators can see or reset it with /summary.';
  }
}

/** "1,234" */
export const tokens = (n: number) => Math.round(n).toLocaleString('en-US');

/** A Discord timestamp: every reader sees it in their own time zone. */
export const when = (ms: number) => `<t:${Math.floor(ms / 1000)}:f> (<t:${Math.floor(ms / 1000)}:R>)`;

/** What is left of the budget that refused a generation, and when it resets. */
export function budgetText(exceeded: BudgetExceeded): string {
  const whose = exceeded.scope === 'user' ? 'your' : "this server's";
  const period = exceeded.period === 'day' ? 'daily' : 'monthly';
  return `${whose} ${period} token budget is used up (${tokens(exceeded.left)} of ${tokens(exceeded.limit)} tokens left; this needs about ${tokens(exceeded.needed)}). It resets ${when(exceeded.resetsAt)}.`;
}

/** The one line for attachments the bot did not keep (over a limit). */
export function refusedAttachmentsText(
  refused: readonly { name: string; reason: 'too_large' | 'too_many' | 'thread_full'; limit: number }[],
): string {
  const mb = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;
  const why = refused.map((r) => {
    const name = `\`${r.name.replaceAll('`', "'")}\``;
    if (r.reason === 'too_large') return `${name} is over ${mb(r.limit)}`;
    if (r.reason === 'too_many') return `${name} is past ${r.limit} files per message`;
    return `${name} would take this thread over its ${mb(r.limit)} of attachments`;
  });
  return `📎 Not sent to the model: ${why.join('; ')}. The text of the message is answered.`;
}

/** /summary show: what stands for the oldest messages of the active branch. */
export function summaryEmbed(view: CondensedView): { title: string; description: string } {
  const title = `Summary of ${view.branchId}`;
  if (!view.kind)
    return {
      title,
      description: `Nothing is summarised yet: the model reads all ${view.historyLength} messages of this branch.`,
    };
  const covered = `It stands for the oldest ${view.covers} of ${view.historyLength} messages; the ${view.historyLength - view.covers} after them go to the model as they are.`;
  const made =
    view.by === 'reset'
      ? `A moderator reset it${view.at ? ` <t:${Math.floor(view.at / 1000)}:R>` : ''}: those messages are forgotten.`
      : `Made by ${view.by === 'provider' ? 'OpenAI while answering' : 'the model'}${view.at ? ` <t:${Math.floor(view.at / 1000)}:R>` : ''}.`;
  const body =
    view.kind === 'compaction'
      ? 'It is an OpenAI compaction: opaque by design, so there is no text to show.'
      : view.text || '(empty)';
  return { title, description: `${covered} ${made}\n\n${body}` };
}
