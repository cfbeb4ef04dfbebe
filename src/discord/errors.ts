import { DiscordAPIError, RESTJSONErrorCodes } from 'discord.js';
import { BotError } from '../core/errors.ts';

/** The sentence a person sees for an error; never a stack, never a secret. */
export function userMessageFor(error: unknown): string {
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
