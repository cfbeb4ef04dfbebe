import { BotError } from './errors.ts';
import { SCHEMA_VERSION } from './model.ts';

/** A stored record written by another version of threadfork: refuse it loudly rather than misread it. */
export class SchemaVersionError extends BotError {
  constructor(what: string, version: unknown) {
    super(
      'schema_version',
      `This thread was saved by another version of threadfork (${what} v${String(version)}); it cannot be continued.`,
    );
  }
}

/**
 * Versions read as the current one without a change: version 3 only added optional fields (`parts`), so a version 2
 * thread, log chunk or message is a version 3 one with no images. The next write stores it as version 3.
 */
const READ_AS_CURRENT: readonly number[] = [2];

export function checkVersion<T extends { version: number }>(
  what: string,
  record: T | undefined,
): T | undefined {
  if (record && READ_AS_CURRENT.includes(record.version)) return { ...record, version: SCHEMA_VERSION };
  if (record && record.version !== SCHEMA_VERSION) throw new SchemaVersionError(what, record.version);
  return record;
}
