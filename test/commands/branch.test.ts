import { describe, expect, it } from 'vitest';
import { BRANCHES_PER_PAGE, renderBranchList } from '../../src/commands/branch.ts';
import type { BranchView } from '../../src/core/branch-tree.ts';

const branch = (n: number, active = false): BranchView => ({
  id: `b${n}`,
  parentId: n === 1 ? undefined : 'b1',
  forkPoint: 2,
  origin: {
    kind: 'alternative',
    letter: 'ABCDE'[n % 5]!,
    style: 'a rather long style label that goes on and on for a while, as styles do',
    model: undefined,
  },
  createdBy: '123456789012345678',
  createdAt: 1_700_000_000_000,
  ownItems: 2,
  provider: undefined,
  active,
  turns: 2,
  depth: n === 1 ? 0 : 1,
});

describe('/branch list', () => {
  it('pages a long tree and stays inside an embed description', () => {
    const tree = Array.from({ length: 40 }, (_, i) => branch(i + 1, i === 30));
    const first = renderBranchList(tree, 1);
    expect(first.title).toBe('Branches (40) · page 1 of 3');
    expect(first.description.split('\n')).toHaveLength(BRANCHES_PER_PAGE);
    expect(first.description.length).toBeLessThanOrEqual(4096);
    const third = renderBranchList(tree, 9);
    expect(third.title).toBe('Branches (40) · page 3 of 3');
    expect(third.description).toContain('▶ **b31**');
  });
});
