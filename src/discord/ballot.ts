import { ButtonStyle } from 'discord.js';
import type { Vote } from '../core/model.ts';
import { tally } from '../core/votes.ts';
import { customId } from './custom-ids.ts';
import { button, buttonRow, fitText, NO_PINGS } from './render.ts';
import { alternativeLabel } from './wording.ts';

const closedByText: Record<NonNullable<Vote['closedBy']>['reason'], string> = {
  quorum: 'it reached the quorum',
  close: 'closed by',
  deadline: 'time ran out',
  moderator: 'picked by moderator',
};

/** The ballot message: one button per alternative with its count, then Close and the moderators' pick. */
export function renderBallot(vote: Vote) {
  const counts = tally(vote);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const tallyLine = vote.options
    .map((o) =>
      o.status === 'ok' ? `**${o.letter}** ${counts.get(o.letter) ?? 0}` : `~~${o.letter}~~ failed`,
    )
    .join(' · ');
  const open = vote.status === 'open';
  let headline: string;
  if (open) {
    const deadline = Math.floor(vote.deadline / 1000);
    headline = `🗳️ **Which reply should the thread continue with?**${vote.blind ? ' (blind: models and styles are shown when it closes)' : ''} Closes <t:${deadline}:R>, or as soon as one has ${vote.quorum} vote${vote.quorum === 1 ? '' : 's'}.`;
  } else if (vote.status === 'closed' || vote.status === 'applied') {
    const reason = vote.closedBy ? closedByText[vote.closedBy.reason] : 'closed';
    const by =
      vote.closedBy?.userId && (vote.closedBy.reason === 'close' || vote.closedBy.reason === 'moderator')
        ? ` <@${vote.closedBy.userId}>`
        : '';
    headline = `✅ **${vote.winner} wins** with ${counts.get(vote.winner ?? '') ?? 0} of ${total} vote${total === 1 ? '' : 's'} (${reason}${by}). The thread continues on it.`;
  } else {
    headline = '🚫 **This vote was cancelled.**';
  }
  const optionButtons = vote.options.map((o) =>
    button(
      customId({ kind: 'vote', voteId: vote.id, letter: o.letter }),
      o.status === 'ok' ? `${o.letter} · ${counts.get(o.letter) ?? 0}` : `${o.letter} · failed`,
      vote.winner === o.letter ? ButtonStyle.Success : ButtonStyle.Primary,
      !open || o.status !== 'ok',
    ),
  );
  const rows = [buttonRow(...optionButtons)];
  if (open) {
    rows.push(
      buttonRow(
        button(customId({ kind: 'close', voteId: vote.id }), 'Close vote', ButtonStyle.Danger),
        button(customId({ kind: 'pickmenu', voteId: vote.id }), 'Moderator pick…'),
      ),
    );
  }
  // A blind vote reveals what each letter was once it is decided.
  const reveal =
    vote.blind && (vote.status === 'closed' || vote.status === 'applied')
      ? `\n${vote.options.map((o) => `**${o.letter}**: ${o.branchId === vote.parentBranchId && vote.options[0] === o ? 'the reply it already had' : alternativeLabel(o)}`).join(' · ')}`
      : '';
  return {
    content: fitText(`${headline}\n${tallyLine}${reveal}`),
    components: rows,
    allowedMentions: NO_PINGS,
  };
}

/** The ephemeral menu a moderator gets: close the vote on any alternative that finished. */
export function renderPickMenu(vote: Vote) {
  const choices = vote.options.filter((o) => o.status === 'ok');
  return {
    content: 'Close the vote on which alternative?',
    components: [
      buttonRow(
        ...choices.map((o) =>
          button(
            customId({ kind: 'pick', voteId: vote.id, letter: o.letter }),
            vote.blind ? o.letter : `${o.letter} · ${alternativeLabel(o)}`,
          ),
        ),
      ),
    ],
  };
}
