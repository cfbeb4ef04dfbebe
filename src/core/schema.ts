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

export function checkVersion<T extends { version: number }>(
  what: string,
  record: T | undefined,
): T | undefined {
  if (record && record.version !== SCHEMA_VERSION) throw new SchemaVersionError(what, record.version);
  return record;
}
