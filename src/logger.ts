import pino from 'pino';
import type { Config } from './config.ts';

/** Shorter strings are not scrubbed from log lines: they would blot out ordinary words. */
const MIN_SECRET_LENGTH = 4;

/**
 * Replaces every occurrence of the given secrets (as they are, and as they appear inside a JSON string) in a line.
 * A last line of defence for secrets that reach a log through an error's fields (a URL's `input`, a message).
 */
export function createScrubber(secrets: readonly string[]): (line: string) => string {
  const needles = [
    ...new Set(
      secrets
        .filter((secret) => secret.length >= MIN_SECRET_LENGTH)
        .flatMap((secret) => [secret, JSON.stringify(secret).slice(1, -1)]),
    ),
  ].sort((a, b) => b.length - a.length);
  if (needles.length === 0) return (line) => line;
  return (line) => needles.reduce((text, needle) => text.replaceAll(needle, '[secret]'), line);
}

/**
 * JSON logs on stdout; anything that looks like a credential is censored before it is written, and `secrets` (the
 * STORE_URL's password) are scrubbed from every line whatever field carries them.
 */
export function createLogger(level: Config['logLevel'], secrets: readonly string[] = []) {
  const scrub = createScrubber(secrets);
  return pino({
    level,
    base: { app: 'threadfork' },
    hooks: { streamWrite: scrub },
    redact: {
      paths: [
        'token',
        'apiKey',
        '*.token',
        '*.apiKey',
        'headers.authorization',
        '*.headers.authorization',
        'config.discord.token',
        'config.openai.apiKey',
      ],
      censor: '[secret]',
    },
  });
}
