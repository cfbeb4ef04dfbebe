import type { Command } from '../discord/context.ts';
import { alternatives } from './alternatives.ts';
import { branch } from './branch.ts';
import { budget } from './budget.ts';
import { chat } from './chat.ts';
import { help } from './help.ts';
import { settings } from './settings.ts';
import { usage } from './usage.ts';

/** Every slash command, in the order /help lists them. */
export const commands: readonly Command[] = [chat, alternatives, branch, settings, usage, budget, help];
