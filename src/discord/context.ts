import type {
  AutocompleteInteraction,
  ButtonInteraction,
  ChatInputCommandInteraction,
  MessageContextMenuCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
  RESTPostAPIContextMenuApplicationCommandsJSONBody,
} from 'discord.js';
import type { Config } from '../config.ts';
import type { ArenaService } from '../core/arena.ts';
import type { AttachmentStore } from '../core/attachments.ts';
import type { BudgetService } from '../core/budgets.ts';
import type { Logger } from '../core/ports.ts';
import type { SettingsService } from '../core/settings.ts';
import type { ThreadService } from '../core/threads.ts';

/** Everything a command or a button handler may use; the same shape for both (no globals). */
export interface BotContext {
  threads: ThreadService;
  settings: SettingsService;
  /** The server's leaderboard and export of votes. */
  arena: ArenaService;
  config: Config;
  logger: Logger;
  /** Keeps the images and files posted in managed threads. */
  attachments: AttachmentStore;
  /** Manage Threads in the channel, or a configured moderator role. */
  isModerator(
    interaction:
      | ChatInputCommandInteraction
      | AutocompleteInteraction
      | ButtonInteraction
      | MessageContextMenuCommandInteraction,
  ): boolean;
  commands: readonly Command[];
  /** Commands on a message's "Apps" menu. */
  messageCommands: readonly MessageCommand[];
  /** Manage Server: who may change the server's budgets. */
  canManageServer(interaction: ChatInputCommandInteraction): boolean;
  budgets: BudgetService;
}

/** One slash command: its definition, and a thin handler that reads options, calls the core and renders. */
export interface Command {
  data: RESTPostAPIChatInputApplicationCommandsJSONBody;
  execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<void>;
  autocomplete?(interaction: AutocompleteInteraction, ctx: BotContext): Promise<void>;
}

/** A message context-menu command ("Apps" on a message): its definition (type 3) and a thin handler. */
export interface MessageCommand {
  data: RESTPostAPIContextMenuApplicationCommandsJSONBody;
  /** One line for /help: what it does. */
  help: string;
  execute(interaction: MessageContextMenuCommandInteraction, ctx: BotContext): Promise<void>;
}
