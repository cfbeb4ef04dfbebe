import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.ts';

const valid = { DISCORD_TOKEN: 'discord-secret-token', OPENAI_API_KEY: 'sk-secret-key' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig({ ...valid, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('long-thread settings', () => {
  it('default to the provider’s compaction past 60% of the window, keeping 30% verbatim', () => {
    expect(parseConfig(valid).context).toEqual({
      mode: 'auto',
      windows: new Map(),
      defaultWindow: 8192,
      thresholdShare: 0.6,
      keepShare: 0.3,
    });
  });

  it('read context windows as model=tokens pairs, and a window for unknown models from CHAT_CONTEXT_TOKENS', () => {
    const config = parseConfig({
      ...valid,
      CONTEXT_WINDOWS: 'llama3.1=131072, qwen2.5 = 32768',
      CHAT_CONTEXT_TOKENS: '4096',
      CONTEXT_MODE: 'summary',
    });
    expect(config.context.windows).toEqual(
      new Map([
        ['llama3.1', 131_072],
        ['qwen2.5', 32_768],
      ]),
    );
    expect(config.context).toMatchObject({ defaultWindow: 4096, mode: 'summary' });
  });

  it('refuse what cannot work, one line per variable', () => {
    expect(problemsOf({ CONTEXT_WINDOWS: 'llama3.1:8k' })).toEqual([
      'CONTEXT_WINDOWS must be model=tokens pairs, comma-separated (tokens at least 256)',
    ]);
    expect(problemsOf({ CONTEXT_MODE: 'sometimes' })).toEqual([
      'CONTEXT_MODE must be one of auto, summary, off',
    ]);
    expect(problemsOf({ CONTEXT_KEEP_PERCENT: '70', CONTEXT_THRESHOLD_PERCENT: '60' })).toEqual([
      'CONTEXT_KEEP_PERCENT must be below CONTEXT_THRESHOLD_PERCENT (60)',
    ]);
    expect(problemsOf({ CONTEXT_THRESHOLD_PERCENT: '99' })).toEqual([
      'CONTEXT_THRESHOLD_PERCENT must be at most 95',
    ]);
  });
});
