import {
  type APIActionRowComponent,
  type APIButtonComponent,
  type APIMessageTopLevelComponent,
  ButtonStyle,
  ComponentType,
} from 'discord.js';

type CustomIdButtonStyle =
  | ButtonStyle.Primary
  | ButtonStyle.Secondary
  | ButtonStyle.Success
  | ButtonStyle.Danger;

/** Model output and user text never ping anyone. */
export const NO_PINGS = { parse: [] as never[], repliedUser: false } as const;

export const DISCORD_MESSAGE_LIMIT = 2000;

/** Discord's limits on what a bot sends (UTF-16 code units, which never undercount what Discord measures). */
export const DISCORD_LIMITS = {
  content: DISCORD_MESSAGE_LIMIT,
  embedTitle: 256,
  embedDescription: 4096,
  /** Title, description, fields, footer and author of all embeds of one message together. */
  embedTotal: 6000,
  buttonLabel: 80,
  /** All text displays of one components v2 message together. */
  componentsText: 4000,
  /** An autocomplete choice's or a select option's name (and a choice's string value). */
  choiceName: 100,
  threadName: 100,
} as const;

export function buttonRow(...buttons: APIButtonComponent[]): APIActionRowComponent<APIButtonComponent> {
  return { type: ComponentType.ActionRow, components: buttons };
}

export function button(
  customId: string,
  label: string,
  style: CustomIdButtonStyle = ButtonStyle.Secondary,
  disabled = false,
): APIButtonComponent {
  return {
    type: ComponentType.Button,
    custom_id: customId,
    label: truncate(label, DISCORD_LIMITS.buttonLabel),
    style,
    disabled,
  };
}

/** Makes a line short enough for a label or a thread name. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/**
 * Makes a text (lines kept) fit in `max` characters: a text that is too long is cut at a line or word break near the
 * end when there is one, and ends with "…", so a reader sees it was cut. Never splits a surrogate pair.
 */
export function fitText(text: string, max: number = DISCORD_LIMITS.content): string {
  if (text.length <= max) return text;
  let end = max - 1;
  // Do not cut a surrogate pair in two.
  if (/[\uD800-\uDBFF]/.test(text.charAt(end - 1))) end -= 1;
  const head = text.slice(0, end);
  // A break in the last fifth reads better than a word cut in half.
  const lastBreak = Math.max(head.lastIndexOf('\n'), head.lastIndexOf(' '));
  const cut = lastBreak >= end * 0.8 ? head.slice(0, lastBreak) : head;
  return `${cut.trimEnd()}…`;
}

/** An embed whose title and description fit Discord's limits, alone and together. */
export function fitEmbed<T extends { title?: string; description?: string }>(embed: T): T {
  const title = embed.title === undefined ? undefined : truncate(embed.title, DISCORD_LIMITS.embedTitle);
  const room = Math.min(DISCORD_LIMITS.embedDescription, DISCORD_LIMITS.embedTotal - (title?.length ?? 0));
  return {
    ...embed,
    ...(title === undefined ? {} : { title }),
    ...(embed.description === undefined ? {} : { description: fitText(embed.description, room) }),
  };
}

/** A prompt given as a command option, shown in the thread as the invoker's words. */
export function promptEcho(authorName: string, prompt: string): string {
  return truncate(`💬 **${authorName}:** ${prompt}`, DISCORD_MESSAGE_LIMIT);
}

/** A message's components without the button `customId` (and without a row it leaves empty), as API JSON. */
export function withoutButton(
  message: { components: readonly { toJSON(): APIMessageTopLevelComponent }[] },
  customId: string,
): APIMessageTopLevelComponent[] {
  const prune = (component: unknown): unknown => {
    const c = component as { custom_id?: string; components?: unknown[]; type: number };
    if (c.custom_id === customId) return undefined;
    if (!Array.isArray(c.components)) return c;
    const children = c.components.map(prune).filter((child) => child !== undefined);
    return children.length === 0 && c.type === ComponentType.ActionRow
      ? undefined
      : { ...c, components: children };
  };
  return message.components
    .map((component) => prune(component.toJSON()))
    .filter((c): c is APIMessageTopLevelComponent => c !== undefined);
}
