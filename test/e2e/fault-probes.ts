// What the fault scenarios (faults-*.test.ts) do and look at besides the harness: the model's requests, the branch
// list, a person deleting a message, a message and the one reply it must get.
import { expect } from 'vitest';
import type { MessageView } from '../emulators/discord/index.ts';
import { type RecordedRequest, replyFor } from '../emulators/openai/index.ts';
import {
  assistant,
  type BotProcess,
  command,
  MODEL,
  replies,
  replyTo,
  type Said,
  user,
  type World,
} from './harness.ts';

export type Person = { id: string; username: string };

/** Posting is not what these scenarios are about: room for the many messages of forks (edits keep Discord's pace). */
export const ROOMY = { rateLimits: { messageCreate: { limit: 50, windowMs: 5000 } } };

/**
 * A message deleted in Discord (a moderator cleaning up): gone for everyone, and the bot's next edit of it fails
 * with 10008 Unknown Message. The emulator's driver has no delete, so this is its REST route with the bot's token.
 */
export async function deleteMessage(world: World, channelId: string, messageId: string): Promise<void> {
  const response = await fetch(`${world.discord.apiUrl}/v10/channels/${channelId}/messages/${messageId}`, {
    method: 'DELETE',
    headers: { Authorization: `Bot ${world.discord.botToken}` },
  });
  if (response.status !== 204) throw new Error(`deleting ${messageId}: ${response.status}`);
}

/** A request that asks the model for a reply (Responses or Chat Completions), whatever its outcome. */
export function isGeneration(r: RecordedRequest): boolean {
  return r.route === 'POST /v1/responses' || r.route === 'POST /v1/chat/completions';
}

type Part = { text?: string };
type Message = { role?: string; content?: string | Part[] };

function textOf(content: Message['content']): string {
  return typeof content === 'string' ? content : (content ?? []).map((p) => p.text ?? '').join('');
}

/** The messages a generation request sends (its input, or its chat messages), system messages aside. */
export function sentMessages(r: RecordedRequest): Said[] {
  const body = r.body as { input?: string | Message[]; messages?: Message[] };
  const list =
    body.messages ?? (typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input);
  return (list ?? []).flatMap((m) =>
    m.role === 'user' || m.role === 'assistant' ? [{ role: m.role, text: textOf(m.content) }] : [],
  );
}

/** The message a generation request asks the model to answer. */
export function answering(r: RecordedRequest): string | undefined {
  return sentMessages(r).findLast((m) => m.role === 'user')?.text;
}

/** Generation requests that answered `said` (the message as the model sees it, "alice: hi") with a 200. */
export function answersTo(world: World, said: string): RecordedRequest[] {
  return world.openai.requests.filter((r) => isGeneration(r) && r.status === 200 && answering(r) === said);
}

/** The replies in the thread that answer `said`, finished or not. */
export function repliesTo(world: World, threadId: string, said: string) {
  return replies(world, threadId).filter((r) => r.text.includes(`to "${said}`));
}

/** Requests from index `from` on that carry `text` anywhere in their body. */
export function requestsMentioning(world: World, text: string, from = 0): RecordedRequest[] {
  return world.openai.requests.slice(from).filter((r) => JSON.stringify(r.body ?? '').includes(text));
}

/** The thread's branches as /branch list shows them to a moderator, and the active one. */
export async function branchList(
  world: World,
  threadId: string,
  moderatorId: string,
): Promise<{ ids: string[]; active: string | undefined }> {
  const shown = await command(world, {
    channelId: threadId,
    userId: moderatorId,
    name: 'branch',
    subcommand: 'list',
  });
  return {
    ids: [...shown.matchAll(/\*\*(b\d+)\*\*/g)].map((m) => m[1]!),
    active: /▶ \*\*(b\d+)\*\*/.exec(shown)?.[1],
  };
}

/** The alternatives in a thread ("**A** · style", the text, the usage line): see the harness's alternativesIn. */
export { alternativesIn } from './harness.ts';

/** An alternative's text as the model wrote it, without its header line and its usage line. */
export function alternativeText(message: MessageView): string {
  return message.content.split('\n').slice(1, -1).join('\n');
}

/**
 * Posts `text` and checks the reply: exactly what the model says for `history` then this message (so the model was
 * sent exactly that), and the only answer to it. Returns the history with the message and its reply.
 */
export async function say(w: World, threadId: string, who: Person, text: string, history: Said[]) {
  const said = `${who.username}: ${text}`;
  w.discord.postMessage(threadId, who.id, text);
  const reply = await replyTo(w, threadId, said, 20_000);
  const next = [...history, user(said)];
  expect(reply.text).toBe(replyFor({ model: MODEL, messages: next }));
  expect(repliesTo(w, threadId, said)).toHaveLength(1);
  expect(answersTo(w, said)).toHaveLength(1);
  return [...next, assistant(reply.text)];
}

/** SIGTERM, a clean exit, and a new bot process on the same store. */
export async function restart(w: World, bot: BotProcess, env: Record<string, string>): Promise<BotProcess> {
  await bot.stop();
  expect(await bot.exited).toBe(0);
  return w.startBot(env);
}
