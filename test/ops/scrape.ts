/** Reading Prometheus text exposition in tests: one sample's value by metric name and labels. */

/**
 * The value of the sample `name{labels}` (labels matched as a subset), summed over the samples that match; undefined
 * when none does.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let found: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/);
    if (!match || match[1] !== name) continue;
    const have = parseLabels(match[3] ?? '');
    if (!Object.entries(labels).every(([key, value]) => have[key] === value)) continue;
    found = (found ?? 0) + Number(match[4]);
  }
  return found;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}
