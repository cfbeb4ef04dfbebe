import { type APIActionRowComponent, type APIButtonComponent, ButtonStyle, ComponentType } from 'discord.js';

type CustomIdButtonStyle =
  | ButtonStyle.Primary
  | ButtonStyle.Secondary
  | ButtonStyle.Success
  | ButtonStyle.Danger;

/** Model output and user text never ping anyone. */
export const NO_PINGS = { parse: [] as never[], repliedUser: false } as const;

export const DISCORD_MESSAGE_LIMIT = 2000;

export function buttonRow(...buttons: APIButtonComponent[]): APIActionRowComponent<APIButtonComponent> {
  return { type: ComponentType.ActionRow, components: buttons };
}

export function button(
  customId: string,
  label: string,
  style: CustomIdButtonStyle = ButtonStyle.Secondary,
  disabled = false,
): APIButtonComponent {
  return { type: ComponentType.Button, custom_id: customId, label, style, disabled };
}

/** Makes a line short enough for a label or a thread name. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** A prompt given as a command option, shown in the thread as the invoker's words. */
export function promptEcho(authorName: string, prompt: string): string {
  return truncate(`💬 **${authorName}:** ${prompt}`, DISCORD_MESSAGE_LIMIT);
}
