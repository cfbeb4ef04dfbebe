import type {
  AutocompleteInteraction,
  ButtonInteraction,
  ChatInputCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { Config } from '../config.ts';
import type { AttachmentStore } from '../core/attachments.ts';
import type { BudgetService } from '../core/budgets.ts';
import type { Logger } from '../core/ports.ts';
import type { SettingsService } from '../core/settings.ts';
import type { ThreadService } from '../core/threads.ts';

/** Everything a command or a button handler may use; the same shape for both (no globals). */
export interface BotContext {
  threads: ThreadService;
  settings: SettingsService;
  config: Config;
  logger: Logger;
  /** Keeps the images and files posted in managed threads. */
  attachments: AttachmentStore;
  /** Manage Threads in the channel, or a configured moderator role. */
  isModerator(
    interaction: ChatInputCommandInteraction | AutocompleteInteraction | ButtonInteraction,
  ): boolean;
  commands: readonly Command[];
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
