import { describe, expect, it } from 'vitest';
import type { Vote } from '../../src/core/model.ts';
import {
  type AlternativeView,
  alternativeHeader,
  alternativeRoom,
  alternativeText,
  renderLiveBallot,
} from '../../src/discord/ballot.ts';
import { parseCustomId } from '../../src/discord/custom-ids.ts';

const longStyle = 's'.repeat(200);

function vote(fields: Partial<Vote> = {}): Vote {
  return {
    id: 'v1',
    invokerId: 'u1',
    parentBranchId: 'b1',
    forkPoint: 4,
    options: ['A', 'B', 'C', 'D', 'E'].map((letter, i) => ({
      letter,
      branchId: `b${i + 2}`,
      style: longStyle,
      model: 'a-model-with-a-long-name',
      status: 'ok' as const,
    })),
    ballots: {},
    quorum: 2,
    blind: true,
    deadline: 1_700_000_000_000,
    status: 'closed',
    winner: 'B',
    closedBy: { userId: 'u1', reason: 'close' },
    closedAt: 1_700_000_000_000,
    cancelReason: undefined,
    answersMessageIds: [],
    ballotMessageId: undefined,
    createdAt: 1_700_000_000_000,
    ...fields,
  };
}

type Node = { type: number; content?: string; custom_id?: string; components?: Node[] };
const walk = (nodes: Node[]): Node[] => nodes.flatMap((n) => [n, ...walk(n.components ?? [])]);

describe('the live ballot message', () => {
  it('keeps five alternatives of any length and a blind reveal within 4,000 characters and 40 components', () => {
    const v = vote();
    const room = alternativeRoom(v);
    const views = new Map<string, AlternativeView>(
      v.options.map((o) => [
        o.letter,
        {
          text: alternativeText(
            alternativeHeader(o, false),
            'word '.repeat(5000),
            '-# 10 in · 9000 out tokens',
            room,
          ),
          rows: [],
        },
      ]),
    );
    const rendered = renderLiveBallot(v, views);
    const all = walk(rendered.components as Node[]);
    const text = all.filter((n) => n.type === 10).reduce((sum, n) => sum + (n.content ?? '').length, 0);
    expect(text).toBeLessThanOrEqual(4000);
    expect(all.length).toBeLessThanOrEqual(40);
    // Each alternative shows its start, cut with "…", and keeps its usage line.
    for (const display of all.filter((n) => n.type === 10).slice(1)) {
      expect(display.content).toMatch(/word…\n-# 10 in · 9000 out tokens$/);
    }
    // Every button's custom_id is one the bot reads back, and names stored state only.
    for (const b of all.filter((n) => n.type === 2)) expect(parseCustomId(b.custom_id!)).toBeDefined();
    expect(rendered.allowedMentions).toMatchObject({ parse: [] });
  });

  it('shows a Stop button while an alternative streams and its vote and Read buttons once the vote opens', () => {
    const generating = vote({ status: 'generating', winner: undefined, closedBy: undefined, blind: false });
    const streaming = renderLiveBallot(
      { ...generating, options: generating.options.map((o) => ({ ...o, status: 'generating' as const })) },
      new Map([['A', { text: '**A** · x\nfirst words ▌', rows: [] }]]),
    );
    expect(walk(streaming.components as Node[]).filter((n) => n.type === 2)).toEqual([]);
    const open = renderLiveBallot({ ...generating, status: 'open' }, new Map());
    const ids = walk(open.components as Node[])
      .filter((n) => n.type === 2)
      .map((n) => parseCustomId(n.custom_id!));
    expect(ids.filter((a) => a?.kind === 'full')).toContainEqual({ kind: 'full', branchId: 'b3', from: 4 });
    expect(ids.filter((a) => a?.kind === 'vote')).toHaveLength(5);
    expect(ids.map((a) => a?.kind)).toContain('close');
  });
});
