import { Resvg } from '@resvg/resvg-js';
import type { BranchView } from '../core/branch-tree.ts';
import type { Rating } from '../core/leaderboard.ts';
import { branchLabel } from './wording.ts';

/**
 * Pictures for Discord: an SVG written here, turned into a PNG by resvg (Rust, shipped as prebuilt per-platform npm
 * packages, so installing downloads nothing else and needs no browser or canvas build). Text uses the system's
 * fonts; without any, the shapes still render and only the labels are missing.
 */
export function svgToPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    background: '#ffffff',
  });
  return resvg.render().asPng();
}

const FONT = `font-family="DejaVu Sans, Arial, Helvetica, sans-serif"`;

export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' }[c]};`,
  );
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** At most this many rows in the leaderboard chart (the table says how many more there are). */
export const CHART_ROWS = 20;

/** Ratings as dots with their 95% intervals as bars, best at the top, on a shared axis. */
export function leaderboardSvg(ratings: readonly Rating[], title: string): string {
  const rows = ratings.slice(0, CHART_ROWS);
  const labelWidth = 260;
  const plotWidth = 440;
  const rowHeight = 26;
  const top = 48;
  const width = labelWidth + plotWidth + 40;
  const height = top + Math.max(1, rows.length) * rowHeight + 40;
  const lows = rows.map((r) => r.low);
  const highs = rows.map((r) => r.high);
  let min = Math.min(...lows, 1000);
  let max = Math.max(...highs, 1000);
  const pad = Math.max(10, (max - min) * 0.05);
  min -= pad;
  max += pad;
  const x = (value: number) => labelWidth + ((value - min) / (max - min)) * plotWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="28" ${FONT} font-size="18" font-weight="bold" fill="#111">${escapeXml(clip(title, 60))}</text>`,
    `<line x1="${x(1000)}" y1="${top - 8}" x2="${x(1000)}" y2="${height - 32}" stroke="#bbb" stroke-dasharray="4 4"/>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowHeight + rowHeight / 2;
    if (i % 2 === 0)
      parts.push(
        `<rect x="0" y="${y - rowHeight / 2}" width="${width}" height="${rowHeight}" fill="#f4f6fa"/>`,
      );
    parts.push(
      `<text x="16" y="${y + 5}" ${FONT} font-size="14" fill="#222">${i + 1}. ${escapeXml(clip(r.key, 30))}</text>`,
      `<line x1="${x(r.low)}" y1="${y}" x2="${x(r.high)}" y2="${y}" stroke="#4a6fd1" stroke-width="3"/>`,
      `<circle cx="${x(r.rating)}" cy="${y}" r="5" fill="#1d3c91"/>`,
    );
  });
  for (const tick of ticks(min, max)) {
    parts.push(
      `<text x="${x(tick)}" y="${height - 14}" ${FONT} font-size="12" fill="#555" text-anchor="middle">${tick}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

function ticks(min: number, max: number): number[] {
  const span = max - min;
  const step = [10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => span / s <= 6) ?? 1000;
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) out.push(t);
  return out;
}

/** Beyond this many branches the picture keeps the active path, its siblings and the active branch's children. */
export const TREE_MAX_BRANCHES = 40;

/** The branches the picture shows, in tree order, and how many it leaves out. */
export function treeShown(branches: readonly BranchView[]): { shown: BranchView[]; hidden: number } {
  if (branches.length <= TREE_MAX_BRANCHES) return { shown: [...branches], hidden: 0 };
  const byId = new Map(branches.map((b) => [b.id, b]));
  const path = new Set<string>();
  for (let b = branches.find((v) => v.active); b && !path.has(b.id); b = byId.get(b.parentId ?? ''))
    path.add(b.id);
  const active = branches.find((v) => v.active)?.id;
  const keep = branches.filter(
    (b) => path.has(b.id) || b.parentId === undefined || path.has(b.parentId) || b.parentId === active,
  );
  // The path always shows; the rest up to the bound (their parents are on the path, so the tree stays connected).
  let others = 0;
  const shown = keep.filter((b) => {
    if (path.has(b.id)) return true;
    others += 1;
    return others <= TREE_MAX_BRANCHES;
  });
  return { shown, hidden: branches.length - shown.length };
}

/**
 * The branch tree, one branch a row, indented by depth with elbow lines from each parent; the active path is drawn
 * thick and coloured. Each row: the id, its label, and where it forked (after how many items of its parent).
 */
export function branchTreeSvg(branches: readonly BranchView[]): string {
  const { shown, hidden } = treeShown(branches);
  const byId = new Map(branches.map((b) => [b.id, b]));
  const onPath = new Set<string>();
  for (let b = branches.find((v) => v.active); b && !onPath.has(b.id); b = byId.get(b.parentId ?? ''))
    onPath.add(b.id);
  const rowHeight = 30;
  const indent = 28;
  const top = 20;
  const maxDepth = Math.min(Math.max(0, ...shown.map((b) => b.depth)), 20);
  const width = 40 + maxDepth * indent + 560;
  const height = top + (shown.length + (hidden > 0 ? 1 : 0)) * rowHeight + 16;
  const row = new Map(shown.map((b, i) => [b.id, i]));
  const nodeX = (b: BranchView) => 24 + Math.min(b.depth, 20) * indent;
  const nodeY = (i: number) => top + i * rowHeight + rowHeight / 2;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
  ];
  // Edges off the active path first, so the path's thick line is drawn over the ones that share its trunk.
  const edges = shown
    .map((b, i) => ({ b, i }))
    .sort((x, y) => Number(onPath.has(x.b.id)) - Number(onPath.has(y.b.id)));
  for (const { b, i } of edges) {
    const parentRow = b.parentId === undefined ? undefined : row.get(b.parentId);
    if (parentRow === undefined) continue;
    const parent = shown[parentRow]!;
    const active = onPath.has(b.id);
    parts.push(
      `<path d="M ${nodeX(parent)} ${nodeY(parentRow)} V ${nodeY(i)} H ${nodeX(b)}" fill="none" stroke="${active ? '#1d3c91' : '#aaa'}" stroke-width="${active ? 3 : 1.5}"/>`,
    );
  }
  shown.forEach((b, i) => {
    const active = onPath.has(b.id);
    const y = nodeY(i);
    const fork = b.parentId === undefined ? '' : ` · forked from ${b.parentId} at item ${b.forkPoint}`;
    parts.push(
      `<circle cx="${nodeX(b)}" cy="${y}" r="${b.active ? 8 : 6}" fill="${active ? '#1d3c91' : '#fff'}" stroke="${active ? '#1d3c91' : '#777'}" stroke-width="2"/>`,
      `<text x="${nodeX(b) + 16}" y="${y + 5}" ${FONT} font-size="14" fill="${active ? '#111' : '#444'}"${b.active ? ' font-weight="bold"' : ''}>${escapeXml(`${b.id}  ${clip(branchLabel(b), 40)}${fork}${b.active ? '  (active)' : ''}`)}</text>`,
    );
  });
  if (hidden > 0)
    parts.push(
      `<text x="24" y="${nodeY(shown.length) + 5}" ${FONT} font-size="13" fill="#777">… ${hidden} more branches, away from the active path</text>`,
    );
  parts.push('</svg>');
  return parts.join('\n');
}
