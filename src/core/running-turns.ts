import { NotAllowedError, NotFoundError } from './errors.ts';

/** Replies being generated in this process, so their Stop button can end them. */
export interface RunningTurns {
  start(turnId: string, askedBy: readonly string[]): AbortSignal;
  end(turnId: string): void;
  /** Ends a running reply early; only whoever asked for it, or a moderator, may. */
  stop(turnId: string, userId: string, isModerator: boolean): void;
}

export function createRunningTurns(): RunningTurns {
  const running = new Map<string, { controller: AbortController; askedBy: readonly string[] }>();
  return {
    start(turnId, askedBy) {
      const controller = new AbortController();
      running.set(turnId, { controller, askedBy });
      return controller.signal;
    },
    end(turnId) {
      running.delete(turnId);
    },
    stop(turnId, userId, isModerator) {
      const turn = running.get(turnId);
      if (!turn) throw new NotFoundError('This reply has already finished.');
      if (!isModerator && !turn.askedBy.includes(userId)) {
        throw new NotAllowedError('Only the person who asked, or a moderator, can stop this reply.');
      }
      turn.controller.abort();
    },
  };
}
