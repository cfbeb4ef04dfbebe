/** One Markdown table: readable in a terminal, pasted as is into the README. */

export interface Row {
  part: string;
  figure: string;
  ours: string;
  baseline: string;
  ratio: string;
  settings: string;
}

const HEADERS: Row = {
  part: '#',
  figure: 'figure',
  ours: 'threadfork',
  baseline: 'baseline',
  ratio: 'ours ÷ baseline',
  settings: 'settings',
};
const COLUMNS = Object.keys(HEADERS) as (keyof Row)[];

export function renderTable(rows: readonly Row[]): string {
  const width = (column: keyof Row) => Math.max(...[HEADERS, ...rows].map((row) => row[column].length));
  const line = (row: Row) => `| ${COLUMNS.map((c) => row[c].padEnd(width(c))).join(' | ')} |`;
  const rule = `| ${COLUMNS.map((c) => '-'.repeat(width(c))).join(' | ')} |`;
  return [line(HEADERS), rule, ...rows.map(line)].join('\n');
}
