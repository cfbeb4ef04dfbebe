import {
  type APIActionRowComponent,
  type APIButtonComponent,
  type APIComponentInContainer,
  type APIMessageTopLevelComponent,
  ButtonStyle,
  ComponentType,
  MessageFlags,
} from 'discord.js';
import type { Vote, VoteOption } from '../core/model.ts';
import { tally } from '../core/votes.ts';
import { customId } from './custom-ids.ts';
import { button, buttonRow, DISCORD_LIMITS, fitText, NO_PINGS, truncate } from './render.ts';
import { alternativeLabel } from './wording.ts';

const closedByText: Record<NonNullable<Vote['closedBy']>['reason'], string> = {
  quorum: 'it reached the quorum',
  close: 'closed by',
  deadline: 'time ran out',
  moderator: 'picked by moderator',
};

/**
 * The ballot's own text (headline, tally, what each letter was) is held to this, so the alternatives always know how
 * much of the message's 4,000 characters of text is theirs, whatever the ballot later says.
 */
export const BALLOT_TEXT_MAX = 800;

/** How an alternative shows in the live ballot: its text display, and its own buttons besides the vote's. */
export interface AlternativeView {
  /** The text display's content: header, text (cut to its share), footer. */
  text: string;
  /** Rows of its own (Stop while it streams, Retry when it failed for waiting messages). */
  rows: APIActionRowComponent<APIButtonComponent>[];
}

/** "**B** · funny · gpt-4.1", or "**B**" alone while a blind vote is undecided. */
export function alternativeHeader(
  option: Pick<VoteOption, 'letter' | 'style' | 'model'>,
  blind: boolean,
): string {
  return blind ? `**${option.letter}**` : `**${option.letter}** · ${alternativeLabel(option)}`;
}

/** The characters of text one alternative may use, so that all of them and the ballot fit one message. */
export function alternativeRoom(vote: Pick<Vote, 'options'>): number {
  return Math.floor((DISCORD_LIMITS.componentsText - BALLOT_TEXT_MAX) / Math.max(1, vote.options.length));
}

/**
 * An alternative's text display: its header, as much of its text as its share allows (cut with "…"; "Read B in
 * full" shows the rest), and its footer.
 */
export function alternativeText(
  header: string,
  body: string,
  footer: string | undefined,
  room: number,
): string {
  const rest = room - header.length - 1 - (footer === undefined ? 0 : footer.length + 1);
  // Nothing yet: "…" holds its place; nothing at all (failed before any text): its footer says why.
  const shown = body ? fitText(body, Math.max(1, rest)) : footer === undefined ? '…' : undefined;
  return fitText([header, shown, footer].filter((part) => part !== undefined).join('\n'), room);
}

/** The ballot's own text: what is asked (or decided), the tally, and for a decided blind vote what each letter was. */
export function ballotText(vote: Vote): string {
  const counts = tally(vote);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const tallyLine = vote.options
    .map((o) => {
      if (o.status === 'ok') return `**${o.letter}** ${counts.get(o.letter) ?? 0}`;
      if (o.status === 'failed') return `~~${o.letter}~~ failed`;
      return `**${o.letter}** …`;
    })
    .join(' · ');
  let headline: string;
  if (vote.status === 'generating') {
    const writing = vote.options.filter((o) => o.status === 'generating').length;
    headline = `⏳ **Writing ${writing} alternative${writing === 1 ? '' : 's'}…** The vote opens when they are done.`;
  } else if (vote.status === 'open') {
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
  // A blind vote reveals what each letter was once it is decided.
  const reveal =
    vote.blind && (vote.status === 'closed' || vote.status === 'applied')
      ? `\n${vote.options.map((o) => `**${o.letter}**: ${isOldReply(vote, o) ? 'the reply it already had' : truncate(alternativeLabel(o), 120)}`).join(' · ')}`
      : '';
  return fitText(`${headline}\n${tallyLine}${reveal}`, BALLOT_TEXT_MAX);
}

/** "Answer again": alternative A is the reply the message already had, on the parent branch. */
function isOldReply(vote: Vote, option: VoteOption): boolean {
  return option.branchId === vote.parentBranchId && vote.options[0] === option;
}

/**
 * The live ballot, one message (components v2): the ballot's text, then one container per alternative (its text,
 * its vote button with the count, "Read B in full", and while it streams its Stop button), then Close and the
 * moderators' pick while the vote is open. `shown` holds what each alternative shows; one not there (the message was
 * re-made by a process that never saw it stream) points to "Read B in full".
 */
export function renderLiveBallot(vote: Vote, shown: ReadonlyMap<string, AlternativeView>) {
  const counts = tally(vote);
  const open = vote.status === 'open';
  const decided = open || vote.status === 'closed' || vote.status === 'applied';
  const room = alternativeRoom(vote);
  const components: APIMessageTopLevelComponent[] = [
    { type: ComponentType.TextDisplay, content: ballotText(vote) },
  ];
  for (const option of vote.options) {
    const view = shown.get(option.letter);
    const header = alternativeHeader(option, vote.blind);
    let text: string;
    if (view) text = view.text;
    else if (isOldReply(vote, option)) text = `**${option.letter}** is the reply it already had, above.`;
    else if (option.status === 'failed')
      text = alternativeText(header, `⚠️ ${option.error ?? 'This alternative failed.'}`, undefined, room);
    else text = alternativeText(header, `-# Its text: “Read ${option.letter} in full”.`, undefined, room);
    const buttons: APIButtonComponent[] = [];
    if (decided && option.status === 'ok') {
      buttons.push(
        button(
          customId({ kind: 'vote', voteId: vote.id, letter: option.letter }),
          `${option.letter} · ${counts.get(option.letter) ?? 0}`,
          vote.winner === option.letter ? ButtonStyle.Success : ButtonStyle.Primary,
          !open,
        ),
      );
      if (option.branchId)
        buttons.push(
          button(
            customId({ kind: 'full', branchId: option.branchId, from: vote.forkPoint }),
            `Read ${option.letter} in full`,
          ),
        );
    }
    const children: APIComponentInContainer[] = [{ type: ComponentType.TextDisplay, content: text }];
    if (buttons.length > 0) children.push(buttonRow(...buttons));
    children.push(...(view?.rows ?? []));
    components.push({ type: ComponentType.Container, components: children });
  }
  if (open) {
    components.push(
      buttonRow(
        button(customId({ kind: 'close', voteId: vote.id }), 'Close vote', ButtonStyle.Danger),
        button(customId({ kind: 'pickmenu', voteId: vote.id }), 'Moderator pick…'),
      ),
    );
  }
  return { flags: MessageFlags.IsComponentsV2 as const, components, allowedMentions: NO_PINGS };
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
