import { formError } from './errors.ts';
import type { AllowedMentions, Pinged } from './types.ts';

/** Mentions written in a message's content: <@id>, <@!id>, <@&id>, @everyone, @here. */
export function parseMentions(
  content: string,
  isUser: (id: string) => boolean,
  isRole: (id: string) => boolean,
): Pinged {
  const users = new Set<string>();
  const roles = new Set<string>();
  for (const m of content.matchAll(/<@!?(\d{1,20})>/g)) {
    const id = m[1];
    if (id !== undefined && isUser(id)) users.add(id);
  }
  for (const m of content.matchAll(/<@&(\d{1,20})>/g)) {
    const id = m[1];
    if (id !== undefined && isRole(id)) roles.add(id);
  }
  return { users: [...users], roles: [...roles], everyone: /@(everyone|here)\b/.test(content) };
}

/**
 * Who is actually pinged. Discord's semantics: no allowed_mentions means everything parsed pings (and a reply
 * pings the replied-to author); with allowed_mentions, only what `parse` or the id lists allow, and the replied
 * user only when replied_user is true.
 */
export function computePinged(
  parsed: Pinged,
  allowed: AllowedMentions | null | undefined,
  opts: { canMentionEveryone: boolean; repliedUserId?: string | undefined },
): Pinged {
  if (allowed === null || allowed === undefined) {
    const users = [...parsed.users];
    if (opts.repliedUserId !== undefined && !users.includes(opts.repliedUserId))
      users.push(opts.repliedUserId);
    return { users, roles: [...parsed.roles], everyone: parsed.everyone && opts.canMentionEveryone };
  }
  const parse = allowed.parse ?? [];
  const userList = allowed.users ?? [];
  const roleList = allowed.roles ?? [];
  if (parse.includes('users') && userList.length > 0) {
    throw formError(
      ['allowed_mentions'],
      'MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE',
      'parse:["users"] and users: [ids...] are mutually exclusive.',
    );
  }
  if (parse.includes('roles') && roleList.length > 0) {
    throw formError(
      ['allowed_mentions'],
      'MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE',
      'parse:["roles"] and roles: [ids...] are mutually exclusive.',
    );
  }
  const users = parse.includes('users')
    ? [...parsed.users]
    : parsed.users.filter((u) => userList.includes(u));
  const roles = parse.includes('roles')
    ? [...parsed.roles]
    : parsed.roles.filter((r) => roleList.includes(r));
  if (
    allowed.replied_user === true &&
    opts.repliedUserId !== undefined &&
    !users.includes(opts.repliedUserId)
  ) {
    users.push(opts.repliedUserId);
  }
  return { users, roles, everyone: parse.includes('everyone') && parsed.everyone && opts.canMentionEveryone };
}
