import { BadInputError, NotAllowedError } from './errors.ts';
import type { ThreadSettings } from './model.ts';
import type { SessionRepository } from './sessions.ts';

/** What a moderator may change with /settings; every field optional. */
export type SettingsPatch = Partial<Omit<ThreadSettings, 'voteMs'>> & { voteSeconds?: number };

export interface SettingsService {
  show(threadId: string): Promise<ThreadSettings>;
  change(threadId: string, patch: SettingsPatch, by: { isModerator: boolean }): Promise<ThreadSettings>;
}

export function createSettingsService({
  sessions,
  maxAlternatives,
}: {
  sessions: SessionRepository;
  maxAlternatives: number;
}): SettingsService {
  async function show(threadId: string) {
    const session = await sessions.get(threadId);
    if (!session) throw new BadInputError('This thread is not managed by threadfork. Start one with /chat.');
    return session.settings;
  }
  return {
    show,
    async change(threadId, patch, { isModerator }) {
      await show(threadId);
      if (!isModerator)
        throw new NotAllowedError(
          'Only moderators (Manage Threads, or a moderator role) can change thread settings.',
        );
      const { voteSeconds, ...rest } = patch;
      for (const count of [rest.alternativesCount, rest.autoAlternatives]) {
        if (count !== undefined && count !== 0 && (count < 2 || count > maxAlternatives)) {
          throw new BadInputError(
            `Alternatives must be between 2 and ${maxAlternatives} (0 turns automatic alternatives off).`,
          );
        }
      }
      if (rest.alternativesCount === 0)
        throw new BadInputError(`The alternatives count must be between 2 and ${maxAlternatives}.`);
      if (rest.quorum !== undefined && (rest.quorum < 0 || rest.quorum > 100))
        throw new BadInputError('The quorum must be between 0 (a majority of the people active) and 100.');
      if (voteSeconds !== undefined && (voteSeconds < 5 || voteSeconds > 86_400)) {
        throw new BadInputError('The vote time must be between 5 seconds and 1 day.');
      }
      const updated = await sessions.update(threadId, (s) => ({
        ...s,
        settings: {
          ...s.settings,
          ...Object.fromEntries(
            Object.entries(rest).filter(([key, value]) => value !== undefined || key === 'instructions'),
          ),
          ...(voteSeconds !== undefined ? { voteMs: voteSeconds * 1000 } : {}),
        },
      }));
      return updated.settings;
    },
  };
}
