import { describe, expect, it } from 'vitest';
import type { BranchView } from '../../src/core/branch-tree.ts';
import {
  branchTreeSvg,
  escapeXml,
  leaderboardSvg,
  svgToPng,
  TREE_MAX_BRANCHES,
  treeShown,
} from '../../src/discord/charts.ts';
import { pngSize } from '../e2e/png.ts';

function view(id: string, parentId: string | undefined, depth: number, active = false): BranchView {
  return {
    id,
    parentId,
    depth,
    active,
    forkPoint: 2,
    origin: parentId
      ? { kind: 'alternative', letter: 'A', style: 'formal', model: undefined }
      : { kind: 'start' },
    createdBy: '1',
    createdAt: 0,
    ownItems: 2,
    provider: undefined,
    turns: 1,
  };
}

/** b1 with 60 children b2..b61; b2 has 30 children b62..b91; b75 (under b2) is active. In tree order. */
function bigTree(): BranchView[] {
  const out = [view('b1', undefined, 0), view('b2', 'b1', 1)];
  for (let n = 62; n <= 91; n += 1) out.push(view(`b${n}`, 'b2', 2, n === 75));
  for (let n = 3; n <= 61; n += 1) out.push(view(`b${n}`, 'b1', 1));
  return out;
}

describe('charts', () => {
  it('bounds a big tree to the active path and its neighbours, the path always in', () => {
    const { shown, hidden } = treeShown(bigTree());
    const ids = new Set(shown.map((b) => b.id));
    for (const id of ['b1', 'b2', 'b75']) expect(ids.has(id)).toBe(true);
    expect(shown.length).toBeLessThanOrEqual(TREE_MAX_BRANCHES + 3);
    expect(hidden).toBe(bigTree().length - shown.length);
    // Every shown branch's parent is shown: the picture stays one tree.
    for (const b of shown) if (b.parentId) expect(ids.has(b.parentId)).toBe(true);
  });

  it('draws small trees whole, and renders valid PNGs of sensible size', () => {
    const small = [view('b1', undefined, 0), view('b2', 'b1', 1, true), view('b3', 'b1', 1)];
    expect(treeShown(small)).toEqual({ shown: small, hidden: 0 });
    const tree = pngSize(svgToPng(branchTreeSvg(small)));
    expect(tree.width).toBeGreaterThan(300);
    expect(tree.height).toBeGreaterThanOrEqual(3 * 30);
    const big = pngSize(svgToPng(branchTreeSvg(bigTree())));
    expect(big.height).toBeLessThan(2000);
    const chart = pngSize(
      svgToPng(
        leaderboardSvg(
          [{ key: '<model & "x">', rating: 1010, low: 980, high: 1040, comparisons: 9, wins: 5 }],
          'Models',
        ),
      ),
    );
    expect(chart.width).toBeGreaterThan(300);
  });

  it('escapes text for SVG', () => {
    expect(escapeXml(`<a & 'b' "c">`)).toBe('&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;');
  });
});
