import pino from 'pino';
import type { Config } from './config.ts';

/** JSON logs on stdout; anything that looks like a credential is censored before it is written. */
export function createLogger(level: Config['logLevel']) {
  return pino({
    level,
    base: { app: 'threadfork' },
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
