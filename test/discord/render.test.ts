import { describe, expect, it } from 'vitest';
import { button, DISCORD_LIMITS, fitEmbed, fitText } from '../../src/discord/render.ts';
import { idList } from '../../src/discord/wording.ts';

describe('fitting texts to Discord limits', () => {
  it('leaves a text that fits as it is, lines included', () => {
    expect(fitText('one\ntwo', 7)).toBe('one\ntwo');
  });

  it('cuts a long text at a break near the end and marks the cut', () => {
    const cut = fitText(`${'word '.repeat(1000)}end`, 2000);
    expect(cut.length).toBeLessThanOrEqual(2000);
    expect(cut).toMatch(/word…$/);
  });

  it('never leaves half a surrogate pair', () => {
    const cut = fitText('😀'.repeat(50), 10);
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(cut).toBe('😀😀😀😀…');
  });

  it('keeps an embed within its description limit and the 6000 in all', () => {
    const embed = fitEmbed({ title: 't'.repeat(300), description: 'd'.repeat(9000) });
    expect(embed.title.length).toBe(DISCORD_LIMITS.embedTitle);
    expect(embed.description.length).toBeLessThanOrEqual(DISCORD_LIMITS.embedDescription);
    expect(embed.title.length + embed.description.length).toBeLessThanOrEqual(DISCORD_LIMITS.embedTotal);
  });

  it('cuts button labels to 80 characters', () => {
    expect((button('id', 'x'.repeat(200)) as { label?: string }).label).toBe(`${'x'.repeat(79)}…`);
  });

  it('lists at most 12 branch ids, however many are pruned', () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `b${i + 1}`);
    expect(idList(ids)).toBe('b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12 and 9988 more');
  });
});
