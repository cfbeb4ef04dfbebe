import { DiscordAPIError, RESTJSONErrorCodes } from 'discord.js';
import { OverBudgetError } from '../core/budgets.ts';
import { BotError } from '../core/errors.ts';
import { budgetText } from './wording.ts';

/** The sentence a person sees for an error; never a stack, never a secret. */
export function userMessageFor(error: unknown): string {
  if (error instanceof OverBudgetError) return `Not started: ${budgetText(error.exceeded)}`;
  if (error instanceof BotError) return error.userMessage;
  if (error instanceof DiscordAPIError) {
    switch (error.code) {
      case RESTJSONErrorCodes.InvalidActionOnArchivedThread:
        return 'This thread is archived; unarchive it to continue.';
      case RESTJSONErrorCodes.MissingPermissions:
      case RESTJSONErrorCodes.MissingAccess:
        return 'I am missing a permission here (I need to view the channel, send messages, and create and post in threads).';
      case RESTJSONErrorCodes.UnknownChannel:
        return 'That channel or thread no longer exists.';
      default:
        break;
    }
  }
  return 'Something went wrong on my side; it has been logged.';
}
