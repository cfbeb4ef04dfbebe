import type {
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { Config } from '../config.ts';
import type { AlternativesService } from '../core/alternatives.ts';
import type { BranchService } from '../core/branches.ts';
import type { Logger } from '../core/ports.ts';
import type { SettingsService } from '../core/settings.ts';
import type { TurnService } from '../core/turns.ts';

/** Everything a command may use; passed to every handler (no globals). */
export interface CommandContext {
  turns: TurnService;
  settings: SettingsService;
  alternatives: AlternativesService;
  branches: BranchService;
  config: Config;
  logger: Logger;
  /** Manage Threads in the channel, or a configured moderator role. */
  isModerator(interaction: ChatInputCommandInteraction | AutocompleteInteraction): boolean;
  commands: readonly Command[];
}

/** One slash command: its definition, and a thin handler that reads options, calls the core and renders. */
export interface Command {
  data: RESTPostAPIChatInputApplicationCommandsJSONBody;
  execute(interaction: ChatInputCommandInteraction, ctx: CommandContext): Promise<void>;
  autocomplete?(interaction: AutocompleteInteraction, ctx: CommandContext): Promise<void>;
}
