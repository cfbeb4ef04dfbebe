/**
 * Renders what people see in the emulated Discord as plain text: who said what (names, not ids), embeds, buttons,
 * and the messages only one person sees. A Transcript prints each message once, when it first appears, and again
 * when it changed (a ballot whose tally moved), so that the thread reads in the order things happened.
 */

import type { World } from '../test/e2e/harness.ts';
import type { MessageView } from '../test/emulators/discord/index.ts';

const ButtonStyle = { Primary: 1, Secondary: 2, Success: 3, Danger: 4 } as const;
const ComponentType = { ActionRow: 1, Button: 2, TextDisplay: 10, Container: 17 } as const;

interface Component {
  type: number;
  content?: string;
  components?: Component[];
}

interface Button {
  label?: string;
  style?: number;
  disabled?: boolean;
}

interface Embed {
  title?: string;
  description?: string;
  fields?: { name: string; value: string }[];
}

function relativeTime(epochSeconds: number, nowMs: number): string {
  const seconds = Math.round(epochSeconds - nowMs / 1000);
  const abs = Math.abs(seconds);
  const amount =
    abs < 45
      ? 'a few seconds'
      : abs < 5400
        ? `${Math.round(abs / 60)} minutes`
        : `${Math.round(abs / 3600)} hours`;
  return seconds >= 0 ? `in ${amount}` : `${amount} ago`;
}

export class Transcript {
  readonly #world: World;
  readonly #names = new Map<string, string>();
  readonly #shown = new Map<string, string>();
  readonly #lines: string[] = [];

  constructor(world: World) {
    this.#world = world;
    this.#names.set(world.discord.botUserId, 'threadfork');
  }

  /** Names a user for the transcript. */
  person(user: { id: string; username: string }): void {
    this.#names.set(user.id, user.username);
  }

  name(userId: string | undefined): string {
    return (userId && this.#names.get(userId)) ?? 'someone';
  }

  /** A line of narration: what someone does that others do not see as a message (a command, a click). */
  say(line: string): void {
    this.#lines.push(line);
  }

  /** Prints the messages of `channelId` that are new or changed since the last look. */
  look(channelId: string): void {
    const messages = this.#world.discord.messages(channelId);
    // What everyone sees first, then what one person sees (a deferred answer is created before what it announces).
    for (const message of [...messages.filter((m) => !m.ephemeral), ...messages.filter((m) => m.ephemeral)]) {
      // A deferred response still "thinking…" shows no text yet.
      if (message.content === '' && message.embeds.length === 0 && message.components.length === 0) continue;
      const rendered = this.render(message);
      const before = this.#shown.get(message.id);
      if (before === rendered) continue;
      this.#shown.set(message.id, rendered);
      const lines = rendered.split('\n');
      const head = before === undefined ? lines[0]! : `✎ ${lines[0]!} (edited)`;
      this.#lines.push(`  ${head}`, ...lines.slice(1).map((l) => `  ${l}`));
    }
  }

  /** A heading for a channel or thread. */
  channel(channelId: string): void {
    const channel = this.#world.discord.channel(channelId);
    const thread = channel?.parentId ? ' (thread)' : '';
    this.#lines.push('', `#${channel?.name ?? channelId}${thread}`);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }

  /** One message as a reader sees it. */
  render(message: MessageView): string {
    const author = this.name(message.authorId);
    const to = message.referenceId ? this.#world.discord.message(message.referenceId) : undefined;
    // A prompt given as a command option is echoed by the bot as "💬 **alice:** ...": it reads as alice's words.
    const echoed = to?.content.match(/^💬 \*\*(.+?):\*\*/)?.[1];
    const replyingTo = to ? ` (replying to ${echoed ?? this.name(to.authorId)})` : '';
    const only = message.ephemeral ? `(only ${this.name(message.visibleTo)} sees) ` : '';
    const body = [
      ...this.#content(message.content),
      ...(message.embeds as Embed[]).flatMap((e) => this.#embed(e)),
      ...this.#components(message.components as Component[]),
    ];
    const [first = '', ...rest] = body;
    return [`${only}${author}${replyingTo}: ${first}`, ...rest.map((l) => `    ${l}`)].join('\n');
  }

  /** Discord markdown as it reads: mentions as names, timestamps as words, small text marked. */
  #content(content: string): string[] {
    if (!content) return [];
    const now = Date.now();
    const text = content
      .replace(/<@!?(\d+)>/g, (_, id: string) => `@${this.name(id)}`)
      .replace(/<#(\d+)>/g, (_, id: string) => `#${this.#world.discord.channel(id)?.name ?? id}`)
      .replace(/<t:(\d+)(?::[tTdDfFR])?>/g, (_, s: string) => relativeTime(Number(s), now))
      .replace(/\*\*(.+?)\*\*/g, '$1');
    return text.split('\n').map((line) => line.replace(/^-# (.*)$/, '($1)'));
  }

  #embed(embed: Embed): string[] {
    const lines = [
      ...(embed.title ? [this.#content(`**${embed.title}**`).join(' ')] : []),
      ...this.#content(embed.description ?? ''),
      ...(embed.fields ?? []).flatMap((f) => [`${f.name}: ${f.value}`]),
    ];
    return lines.map((l) => `│ ${l}`);
  }

  /**
   * Rows of buttons, and (components v2, the live ballot) text displays and containers: a container's lines are
   * marked "│", as Discord draws it as a box.
   */
  #components(components: Component[]): string[] {
    return components.flatMap((component) => {
      if (component.type === ComponentType.TextDisplay) return this.#content(component.content ?? '');
      if (component.type === ComponentType.Container)
        return this.#components(component.components ?? []).map((line) => `│ ${line}`);
      return this.#buttons([component]);
    });
  }

  #buttons(components: unknown[]): string[] {
    return (components as { components?: Button[] }[]).flatMap((row) => {
      const buttons = row.components ?? [];
      if (buttons.length === 0) return [];
      const shown = buttons.map((b) => {
        const mark = b.style === ButtonStyle.Success ? '✓ ' : '';
        return `[${mark}${b.label ?? ''}]`;
      });
      const disabled = buttons.every((b) => b.disabled) ? '  (greyed out)' : '';
      return [`${shown.join(' ')}${disabled}`];
    });
  }
}
