import type { UsageReport } from '../core/budgets.ts';
import { totalTokens } from '../core/budgets.ts';
import { escapeXml, svgToPng } from './charts.ts';
import { tokens } from './wording.ts';

/**
 * The /usage chart: a bar per budget (today, this month) filled to what was used, and this month's top models. Drawn
 * as SVG here and rasterised to PNG by resvg (its binary ships inside an npm package: nothing is downloaded or built
 * at install time). Text uses the machine's fonts; without any, the bars still read.
 */

const WIDTH = 640;
const ROW = 34;
const LEFT = 150;
const BAR = WIDTH - LEFT - 150;

/** Cut first, then escape: a cut must never split an entity. */
const label = (text: string) => escapeXml(text.length > 40 ? `${text.slice(0, 39)}…` : text);

interface Row {
  label: string;
  value: number;
  /** The bar's full length: the limit, or the largest value of the group. */
  scale: number;
  caption: string;
  color: string;
}

function rowSvg(row: Row, y: number): string {
  const filled = row.scale > 0 ? Math.max(2, Math.min(1, row.value / row.scale) * BAR) : 0;
  return [
    `<text x="${LEFT - 10}" y="${y + 19}" text-anchor="end" font-size="14" fill="#dbdee1">${label(row.label)}</text>`,
    `<rect x="${LEFT}" y="${y + 6}" width="${BAR}" height="18" rx="4" fill="#3a3c42"/>`,
    `<rect x="${LEFT}" y="${y + 6}" width="${filled.toFixed(1)}" height="18" rx="4" fill="${row.color}"/>`,
    `<text x="${LEFT + BAR + 10}" y="${y + 19}" font-size="13" fill="#b5bac1">${label(row.caption)}</text>`,
  ].join('');
}

/** The SVG of a usage report (exported for tests that look at what is drawn). */
export function usageSvg(title: string, report: UsageReport): string {
  const rows: Row[] = [];
  for (const period of ['day', 'month'] as const) {
    const used = totalTokens(report[period].tokens);
    const limit = report.limits?.[period] ?? 0;
    rows.push({
      label: period === 'day' ? 'today' : 'this month',
      value: used,
      scale: limit > 0 ? limit : used,
      caption: limit > 0 ? `${tokens(used)} / ${tokens(limit)}` : tokens(used),
      color: limit > 0 && used >= limit ? '#da373c' : '#5865f2',
    });
  }
  const models = report.month.models.slice(0, 5);
  const top = Math.max(1, ...models.map((m) => m.tokens));
  for (const m of models)
    rows.push({ label: m.model, value: m.tokens, scale: top, caption: tokens(m.tokens), color: '#23a559' });
  const height = 44 + rows.length * ROW + (models.length > 0 ? 26 : 0) + 10;
  let y = 44;
  const body: string[] = [];
  for (const [index, row] of rows.entries()) {
    if (index === 2) {
      y += 26;
      body.push(`<text x="16" y="${y - 8}" font-size="13" fill="#949ba4">top models this month</text>`);
    }
    body.push(rowSvg(row, y));
    y += ROW;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" rx="8" fill="#2b2d31"/>`,
    `<text x="16" y="28" font-size="16" font-weight="bold" fill="#f2f3f5">${label(title)}</text>`,
    ...body,
    '</svg>',
  ].join('');
}

/** The chart as PNG bytes. */
export function usageChart(title: string, report: UsageReport): Buffer {
  return svgToPng(usageSvg(title, report));
}
