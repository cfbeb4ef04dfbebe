import { describe, expect, it } from 'vitest';
import type { UsageRecord, UsageReport } from '../../src/core/budgets.ts';
import { usageChart, usageSvg } from '../../src/discord/usage-chart.ts';

const record = (tokens: number, models: UsageRecord['models'] = []): UsageRecord => ({
  tokens: { input: tokens / 2, cachedInput: 0, output: tokens / 2 },
  cost: 0,
  unpriced: false,
  generations: 1,
  models,
  holds: [],
});

const report = (
  day: UsageRecord,
  month: UsageRecord,
  limits?: { day: number; month: number },
): UsageReport => ({
  day,
  month,
  limits,
  resets: { day: 0, month: 0 },
});

describe('the /usage chart', () => {
  it('draws a budget bar filled to what is used, red when it is used up, and the top models', () => {
    const svg = usageSvg(
      'Your usage',
      report(record(500), record(2000, [{ model: 'gpt-4.1-mini', tokens: 2000, cost: 0 }]), {
        day: 1000,
        month: 2000,
      }),
    );
    // The bar is 340 wide: half of it for today, all of it (in red) for the month.
    expect(svg).toContain('width="170.0" height="18" rx="4" fill="#5865f2"');
    expect(svg).toContain('width="340.0" height="18" rx="4" fill="#da373c"');
    expect(svg).toContain('500 / 1,000');
    expect(svg).toContain('gpt-4.1-mini');
  });

  it('escapes model names (moderators can type any) and renders a PNG', () => {
    const month = record(10, [{ model: '<b>&"evil"</b>', tokens: 10, cost: 0 }]);
    const svg = usageSvg('Usage', report(record(0), month));
    expect(svg).not.toContain('<b>');
    expect(svg).toContain('&lt;b&gt;&amp;&quot;evil&quot;');
    const long = usageSvg(
      'Usage',
      report(record(0), record(10, [{ model: '&'.repeat(100), tokens: 10, cost: 0 }])),
    );
    expect(long).toContain(`${'&amp;'.repeat(39)}…<`);
    const png = usageChart('Usage', report(record(0), month));
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  });
});
