/**
 * Every button's custom_id, made and read here only. Each names stored state (a thread, a vote, a message), never
 * in-memory state, so buttons keep working across restarts. Discord allows 100 characters; ours stay far below.
 */
export type ButtonAction =
  | { kind: 'stop'; turnId: string }
  | { kind: 'retry'; threadId: string; messageId: string }
  | { kind: 'vote'; voteId: string; letter: string }
  | { kind: 'close'; voteId: string }
  | { kind: 'pickmenu'; voteId: string }
  | { kind: 'pick'; voteId: string; letter: string }
  | { kind: 'prune'; threadId: string }
  /** "Read B in full": the first reply on a branch from a vote's fork point. */
  | { kind: 'full'; branchId: string; from: number };

export function customId(action: ButtonAction): string {
  switch (action.kind) {
    case 'stop':
      return `stop:${action.turnId}`;
    case 'retry':
      return `retry:${action.threadId}:${action.messageId}`;
    case 'vote':
    case 'pick':
      return `${action.kind}:${action.voteId}:${action.letter}`;
    case 'close':
    case 'pickmenu':
      return `${action.kind}:${action.voteId}`;
    case 'prune':
      return `prune:${action.threadId}`;
    case 'full':
      return `full:${action.branchId}:${action.from}`;
  }
}

/** The action a custom_id names, or undefined for one this version does not know (an old message's button). */
export function parseCustomId(id: string): ButtonAction | undefined {
  const [kind, first = '', second = ''] = id.split(':');
  if (!first) return undefined;
  switch (kind) {
    case 'stop':
      return { kind, turnId: first };
    case 'retry':
      return second ? { kind, threadId: first, messageId: second } : undefined;
    case 'vote':
    case 'pick':
      return second ? { kind, voteId: first, letter: second } : undefined;
    case 'close':
    case 'pickmenu':
      return { kind, voteId: first };
    case 'prune':
      return { kind, threadId: first };
    case 'full':
      return /^\d+$/.test(second) ? { kind, branchId: first, from: Number(second) } : undefined;
    default:
      return undefined;
  }
}
