import type { Command, MessageCommand } from '../discord/context.ts';
import { alternatives } from './alternatives.ts';
import { alternativesFromHere } from './alternatives-from-here.ts';
import { branch } from './branch.ts';
import { budget } from './budget.ts';
import { chat } from './chat.ts';
import { exportCommand } from './export.ts';
import { help } from './help.ts';
import { leaderboard } from './leaderboard.ts';
import { settings } from './settings.ts';
import { summary } from './summary.ts';
import { usage } from './usage.ts';

/** Every slash command, in the order /help lists them. */
export const commands: readonly Command[] = [
  chat,
  alternatives,
  branch,
  summary,
  settings,
  usage,
  budget,
  leaderboard,
  exportCommand,
  help,
];

/** Commands on a message's "Apps" menu. */
export const messageCommands: readonly MessageCommand[] = [alternativesFromHere];
