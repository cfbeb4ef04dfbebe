/**
 * Part 6, streaming CPU: the CPU time (process.cpuUsage) one streamed reply costs, from the model's deltas to the
 * Discord messages, for replies of 1k and 16k deltas of 2 to 6 characters. Each delta goes through createThinkFilter
 * and the real startStreamingReply, with the bot's edit budget, into a fake channel that records posts and edits (no
 * network, no emulator). Time is virtual (node:test's mock timers): deltas arrive 50 a second in network chunks of 10,
 * edits run 1.25 s apart as in the bot, so a 16k-delta reply is five minutes of streaming run in a moment. The loop
 * that feeds the deltas and lets the event loop turn is counted too.
 *
 * The baseline is the same replies through `raw += delta; handle.update(stripThink(raw))`, what the core did at each
 * delta before createThinkFilter. If the cost is linear in the reply's length, 16k deltas cost 16 times 1k.
 *
 * Run alone: `node bench/streaming.ts`; in the whole bench: `npm run bench` (part 6).
 */
import { mock } from 'node:test';
import type { Client, SendableChannels } from 'discord.js';
import { createThinkFilter, stripThink } from '../src/core/strip-think.ts';
import { createEditQueue } from '../src/discord/edit-queue.ts';
import { THREAD_EDIT_BUDGET } from '../src/discord/presenter.ts';
import { startStreamingReply } from '../src/discord/streaming-reply.ts';
import { seconds } from './common.ts';
import { describeMachine, machine } from './machine.ts';
import { type Row, renderTable } from './table.ts';

export const STREAMING_DELTAS = [1000, 16_000] as const;
export const DELTAS_PER_SECOND = 50;
const CHUNK = 10;
/**
 * Replies measured per kind and length, of which the median is kept (a shared machine makes some runs slow); the
 * baseline's are fewer, being slow themselves.
 */
const REPEATS: Record<number, { ours: number; baseline: number }> = {
  1000: { ours: 15, baseline: 3 },
  16000: { ours: 5, baseline: 1 },
};

export const REPLY_KINDS = {
  markdown: 'paragraphs, lists and code blocks',
  reasoning: 'a leading <think> block, then markdown with closed <think> blocks in it',
  'unclosed tags': 'markdown with a "<think " that never gets its ">" every 60 characters or so',
} as const;
export type ReplyKind = keyof typeof REPLY_KINDS;

export interface StreamingRow {
  kind: ReplyKind;
  deltas: number;
  /** Characters of the raw reply. */
  characters: number;
  /** Median CPU per reply through createThinkFilter, and through stripThink of the whole text at every delta. */
  cpuMs: number;
  baselineCpuMs: number;
  /** Of one reply through createThinkFilter: messages posted and edits made. */
  posts: number;
  edits: number;
}

/** A small deterministic generator (mulberry32): every run streams the same replies. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Curly quotes and dashes, as models write them: most replies are not plain ASCII.
const WORDS = [
  'the',
  'reply',
  'thread',
  'model',
  'it’s',
  'streams',
  'a',
  'branch',
  '—',
  'votes',
  'and',
  'code',
];

/** The raw text of a reply of `kind`, cut into `count` deltas of 2 to 6 characters. */
export function replyDeltas(kind: ReplyKind, count: number, seed = 1): string[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const words = (n: number) => Array.from({ length: n }, () => pick(WORDS)).join(' ');
  const tagged = (text: string) =>
    kind === 'unclosed tags' ? text.replace(/(.{60}) /g, (_, before: string) => `${before} <think `) : text;
  const block = (): string => {
    const roll = next();
    if (roll < 0.2)
      return `\`\`\`ts\n${Array.from({ length: 6 }, (_, i) => `const v${i} = '${words(3)}';`).join('\n')}\n\`\`\``;
    if (roll < 0.4) return Array.from({ length: 4 }, () => `- ${words(8)}`).join('\n');
    const paragraph = `${words(40)}.`;
    return kind === 'reasoning' && roll > 0.85 ? `${paragraph} <think>${words(20)}</think>` : paragraph;
  };
  let text = kind === 'reasoning' ? `<think>\n${words(count / 8)}\n</think>\n\n` : '';
  while (text.length < count * 6) text += `${tagged(block())}\n\n`;
  const deltas: string[] = [];
  let at = 0;
  while (deltas.length < count) {
    const size = 2 + Math.floor(next() * 5);
    deltas.push(text.slice(at, at + size));
    at += size;
  }
  return deltas;
}

function createRecordingChannel() {
  const counts = { posts: 0, edits: 0 };
  const channel = {
    async send() {
      counts.posts += 1;
      return {
        async edit() {
          counts.edits += 1;
        },
        async delete() {},
      };
    },
    async sendTyping() {},
  };
  return { channel: channel as unknown as SendableChannels, counts };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** Streams one reply under virtual time; returns the CPU it took and what the channel saw. */
async function streamReply(
  deltas: readonly string[],
  path: 'filter' | 'baseline',
): Promise<{ cpuMs: number; posts: number; edits: number }> {
  const { channel, counts } = createRecordingChannel();
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  try {
    const queue = createEditQueue({ ...THREAD_EDIT_BUDGET, now: () => Date.now() });
    const before = process.cpuUsage();
    const handle = await startStreamingReply({
      client: {} as Client,
      channel,
      threadId: 'thread',
      queue,
      logger: silent,
      turnId: 'turn',
      header: undefined,
      replyToMessageId: undefined,
    });
    const filter = createThinkFilter();
    let raw = '';
    for (const [index, delta] of deltas.entries()) {
      if (path === 'filter') handle.update(filter.push(delta));
      else {
        raw += delta;
        handle.update(stripThink(raw));
      }
      if (index % CHUNK === CHUNK - 1) {
        mock.timers.tick((CHUNK * 1000) / DELTAS_PER_SECOND);
        await turn();
      }
    }
    const text = path === 'filter' ? filter.text : stripThink(raw);
    let done = false;
    const finishing = handle.finish({ kind: 'done', text, usage: undefined, refused: false }).finally(() => {
      done = true;
    });
    while (!done) {
      mock.timers.tick(250);
      await turn();
    }
    await finishing;
    const used = process.cpuUsage(before);
    return { cpuMs: (used.user + used.system) / 1000, ...counts };
  } finally {
    mock.timers.reset();
  }
}

async function medianCpu(deltas: readonly string[], path: 'filter' | 'baseline', repeats: number) {
  const runs: { cpuMs: number; posts: number; edits: number }[] = [];
  for (let i = 0; i < repeats; i++) runs.push(await streamReply(deltas, path));
  runs.sort((a, b) => a.cpuMs - b.cpuMs);
  return runs[Math.floor(runs.length / 2)]!;
}

export async function runStreaming(log: (line: string) => void): Promise<StreamingRow[]> {
  // Warm up: the first replies also pay for compiling the code, and a long one takes paths short ones do not.
  for (const kind of Object.keys(REPLY_KINDS) as ReplyKind[]) {
    await streamReply(replyDeltas(kind, 16_000, 99), 'filter');
    await streamReply(replyDeltas(kind, 1000, 99), 'filter');
    await streamReply(replyDeltas(kind, 1000, 99), 'baseline');
  }
  const rows: StreamingRow[] = [];
  for (const kind of Object.keys(REPLY_KINDS) as ReplyKind[]) {
    for (const count of STREAMING_DELTAS) {
      const deltas = replyDeltas(kind, count);
      const repeats = REPEATS[count] ?? { ours: 1, baseline: 1 };
      const ours = await medianCpu(deltas, 'filter', repeats.ours);
      const baseline = await medianCpu(deltas, 'baseline', repeats.baseline);
      const row: StreamingRow = {
        kind,
        deltas: count,
        characters: deltas.join('').length,
        cpuMs: ours.cpuMs,
        baselineCpuMs: baseline.cpuMs,
        posts: ours.posts,
        edits: ours.edits,
      };
      rows.push(row);
      log(
        `  ${kind}, ${count} deltas (${row.characters} characters): ${row.cpuMs.toFixed(1)} ms CPU, ` +
          `baseline ${row.baselineCpuMs.toFixed(1)} ms; ${row.posts} messages, ${row.edits} edits`,
      );
    }
  }
  return rows;
}

/** The table's rows: per kind, CPU per reply at 1k and 16k deltas, and how much 16 times the deltas cost. */
export function streamingRows(rows: readonly StreamingRow[]): Row[] {
  const [short, long] = STREAMING_DELTAS;
  const ms = (value: number) => (value >= 1000 ? seconds(value) : `${value.toFixed(1)} ms`);
  const times = (a: number, b: number) => (a === 0 ? '–' : (b / a).toFixed(0));
  const settings = `deltas of 2-6 characters, ${DELTAS_PER_SECOND}/s of virtual time · edits 1.25 s apart · fake channel`;
  return (Object.keys(REPLY_KINDS) as ReplyKind[]).flatMap((kind): Row[] => {
    const a = rows.find((r) => r.kind === kind && r.deltas === short);
    const b = rows.find((r) => r.kind === kind && r.deltas === long);
    if (a === undefined || b === undefined) return [];
    return [
      {
        part: '6',
        figure: `CPU per streamed reply of 1k · 16k deltas (16k ÷ 1k; linear: 16): ${kind}`,
        ours: `${ms(a.cpuMs)} · ${ms(b.cpuMs)} (${times(a.cpuMs, b.cpuMs)})`,
        baseline: `${ms(a.baselineCpuMs)} · ${ms(b.baselineCpuMs)} (${times(a.baselineCpuMs, b.baselineCpuMs)})`,
        ratio: `${(a.cpuMs / a.baselineCpuMs).toFixed(2)} · ${(b.cpuMs / b.baselineCpuMs).toFixed(2)}`,
        settings: `${settings} · 16k: ${b.posts} messages, ${b.edits} edits`,
      },
    ];
  });
}

if (import.meta.main) {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  console.log(`threadfork benchmark, part 6 (streaming CPU) · ${new Date().toISOString()}`);
  console.log(`machine: ${describeMachine(machine())}\n`);
  const rows = await runStreaming(log);
  console.log(renderTable(streamingRows(rows)));
}
