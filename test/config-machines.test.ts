// The settings of several machines: SHARD_IDS for `npm run start:sharded`, and `npm run rest-proxy`'s own.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, parseRestProxyConfig } from '../src/config.ts';

const valid = { DISCORD_TOKEN: 'discord-secret-token', OPENAI_API_KEY: 'sk-secret-key' };

function problemsOf(parse: () => unknown): string[] {
  try {
    parse();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration of several machines', () => {
  it('reads SHARD_IDS as ids and ranges out of SHARD_COUNT', () => {
    expect(parseConfig({ ...valid, SHARD_COUNT: '8', SHARD_IDS: '6-7, 0,2-3,2' }).shardIds).toEqual([
      0, 2, 3, 6, 7,
    ]);
    expect(parseConfig(valid).shardIds).toBeUndefined();
  });

  it('names what is wrong with SHARD_IDS', () => {
    expect(problemsOf(() => parseConfig({ ...valid, SHARD_COUNT: '4', SHARD_IDS: '0-x' }))).toEqual([
      'SHARD_IDS must be shard ids and ranges, such as 0-2,5',
    ]);
    expect(problemsOf(() => parseConfig({ ...valid, SHARD_COUNT: '4', SHARD_IDS: '3-1' }))).toEqual([
      'SHARD_IDS must be shard ids and ranges, such as 0-2,5',
    ]);
    expect(problemsOf(() => parseConfig({ ...valid, SHARD_IDS: '0-1' }))).toEqual([
      'SHARD_IDS needs SHARD_COUNT: every machine must agree on the total number of shards',
    ]);
    expect(problemsOf(() => parseConfig({ ...valid, SHARD_COUNT: '6', SHARD_IDS: '4-7' }))).toEqual([
      'SHARD_IDS must be below SHARD_COUNT (6): 6, 7 is not a shard',
    ]);
  });

  it("reads the REST proxy's upstream, port and host, and needs no token", () => {
    expect(parseRestProxyConfig({})).toEqual({
      upstreamUrl: undefined,
      port: 8280,
      host: '127.0.0.1',
      logLevel: 'info',
    });
    expect(
      parseRestProxyConfig({
        REST_PROXY_UPSTREAM: 'http://127.0.0.1:9000/api',
        REST_PROXY_PORT: '9090',
        REST_PROXY_HOST: '0.0.0.0',
        // The bot's .env points DISCORD_API_URL at the proxy: the proxy must not follow it to itself.
        DISCORD_API_URL: 'http://127.0.0.1:9090/api',
      }),
    ).toMatchObject({ upstreamUrl: 'http://127.0.0.1:9000/api', port: 9090, host: '0.0.0.0' });
    expect(
      problemsOf(() => parseRestProxyConfig({ REST_PROXY_UPSTREAM: 'ftp://x', REST_PROXY_PORT: 'no' })),
    ).toEqual(['REST_PROXY_UPSTREAM must be an http(s) URL', 'REST_PROXY_PORT must be a whole number']);
  });
});
