import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, readEnv, storeUrlSecrets } from '../src/config.ts';
import { createScrubber } from '../src/logger.ts';

const valid = { DISCORD_TOKEN: 'discord-secret-token', OPENAI_API_KEY: 'sk-secret-key' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration', () => {
  it('needs only the two secrets, and defaults the rest', () => {
    const config = parseConfig(valid);
    expect(config).toMatchObject({
      backend: 'conversations',
      storeUrl: 'sqlite://data/threadfork.sqlite',
      alternatives: { defaultCount: 2, maxCount: 5, voteMs: 120_000 },
      openai: { model: 'gpt-4.1-mini', baseUrl: undefined },
      discord: { apiUrl: undefined },
    });
  });

  it('takes EXPORT_SALT when long enough, and names a short one without printing it', () => {
    expect(parseConfig(valid).exportSalt).toBeUndefined();
    expect(parseConfig({ ...valid, EXPORT_SALT: 'a-long-enough-salt' }).exportSalt).toBe(
      'a-long-enough-salt',
    );
    const problems = problemsOf({ ...valid, EXPORT_SALT: 'short' });
    expect(problems).toEqual([expect.stringMatching(/^EXPORT_SALT must be at least 16 characters/)]);
    expect(problems.join('\n')).not.toContain('short"');
  });

  it('names a missing DISCORD_TOKEN in one line', () => {
    expect(problemsOf({ OPENAI_API_KEY: 'sk' })).toEqual([
      expect.stringMatching(/^DISCORD_TOKEN is required/),
    ]);
  });

  it('names a malformed URL, an out-of-range number and a bad choice, one line each, without values', () => {
    const problems = problemsOf({
      ...valid,
      DISCORD_API_URL: 'not a url',
      VOTE_SECONDS: '2',
      BACKEND: 'magic',
      MODERATOR_ROLE_IDS: '12,abc',
    });
    expect(problems).toEqual([
      'DISCORD_API_URL must be an http(s) URL',
      'BACKEND must be one of conversations, responses, chat',
      'VOTE_SECONDS must be at least 5',
      'MODERATOR_ROLE_IDS must be comma-separated Discord role ids',
    ]);
    expect(problems.join('\n')).not.toMatch(/secret|not a url|magic/);
  });

  it('reads .env, and lets the real environment win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'threadfork-config-'));
    const path = join(dir, '.env');
    writeFileSync(path, '# comment\nDISCORD_TOKEN=from-file\nOPENAI_API_KEY="sk-file"\nLOG_LEVEL=debug\n');
    const env = readEnv(path, { LOG_LEVEL: 'warn' });
    expect(parseConfig(env)).toMatchObject({
      discord: { token: 'from-file' },
      openai: { apiKey: 'sk-file' },
      logLevel: 'warn',
    });
  });

  it('rejects a malformed .env line by number, without printing it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'threadfork-config-'));
    const path = join(dir, '.env');
    writeFileSync(path, 'DISCORD_TOKEN=ok\nthis line is secret garbage\n');
    expect(() => readEnv(path, {})).toThrow(/line 2 is not NAME=value/);
    expect(() => readEnv(path, {})).not.toThrow(/garbage/);
  });

  it('serves no metrics unless METRICS_PORT is set, on loopback unless METRICS_HOST says otherwise', () => {
    expect(parseConfig(valid).metrics).toBeUndefined();
    expect(parseConfig({ ...valid, METRICS_PORT: '9464' }).metrics).toEqual({
      port: 9464,
      host: '127.0.0.1',
    });
    expect(parseConfig({ ...valid, METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' }).metrics).toEqual({
      port: 9464,
      host: '0.0.0.0',
    });
    expect(parseConfig({ ...valid, METRICS_PORT: '9464', METRICS_HOST: '::' }).metrics?.host).toBe('::');
    expect(parseConfig({ ...valid, METRICS_PORT: '' }).metrics).toBeUndefined();
  });

  it('names a bad METRICS_PORT or METRICS_HOST in one line each', () => {
    expect(problemsOf({ ...valid, METRICS_PORT: '70000', METRICS_HOST: 'http://x/' })).toEqual([
      'METRICS_PORT must be at most 65535',
      'METRICS_HOST must be a host name or IP address (127.0.0.1 for this machine only, 0.0.0.0 for every interface)',
    ]);
    expect(problemsOf({ ...valid, METRICS_PORT: 'nine' })).toEqual(['METRICS_PORT must be a whole number']);
  });
});

describe('STORE_URL secrets', () => {
  it.each(['redis://:hunter2#sesame@127.0.0.1:6379', 'redis://:bad%zzpassword@127.0.0.1:6379'])(
    'refuses %s with a hint, never repeating it',
    (url) => {
      const problems = problemsOf({ ...valid, STORE_URL: url });
      expect(problems).toEqual([expect.stringMatching(/^STORE_URL is not a valid URL: .* %40 %23/)]);
      expect(problems.join('\n')).not.toMatch(/hunter2|sesame|zzpassword/);
    },
  );

  it('takes a password with an @ or an encoded #', () => {
    expect(parseConfig({ ...valid, STORE_URL: 'redis://:open@sesame%2342@127.0.0.1:6379' }).storeUrl).toBe(
      'redis://:open@sesame%2342@127.0.0.1:6379',
    );
  });

  it('scrubs the password, as written and decoded, and the whole URL from a log line', () => {
    const url = 'redis://user:open@sesame%2342@127.0.0.1:6379';
    const scrub = createScrubber(storeUrlSecrets(url));
    const line = JSON.stringify({ err: { input: url, message: 'auth open@sesame#42 failed' } });
    const clean = scrub(line);
    expect(clean).not.toMatch(/sesame/);
    expect(clean).toContain('[secret]');
    expect(storeUrlSecrets('sqlite://data/threadfork.sqlite')).toEqual([]);
  });
});
