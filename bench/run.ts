/**
 * `npm run bench`: the real bot (a child process, exactly as `npm start`) against the Discord and OpenAI emulators on
 * loopback. Prints the machine, then one table of figures, each with the settings that produced it, and writes the
 * same figures as JSON to bench/results/latest.json. Figures are printed, never asserted.
 *
 * Part 6 (streaming CPU) runs in this process alone, with no bot and no emulator: see bench/streaming.ts. Part 7
 * (history length) runs the core in this process on the real SQLite store: see bench/history.ts.
 *
 * `npm run bench -- 1 3` runs parts 1 and 3 only (part 4 comes with part 1); only a full run writes latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kilobytes, now, round, seconds } from './common.ts';
import { FORK_COUNT, type ForkCostRow, runForkCost } from './fork-cost.ts';
import { type HistoryResult, LONG_HISTORY, runHistory, SHORT_HISTORY } from './history.ts';
import { type LatencyResult, REPLY_TOKENS, runLatency } from './latency.ts';
import { describeMachine, machine } from './machine.ts';
import {
  DELTAS_PER_SECOND,
  REPLY_KINDS,
  runStreaming,
  STREAMING_DELTAS,
  streamingRows,
} from './streaming.ts';
import { type Row, renderTable } from './table.ts';
import { MESSAGES_PER_THREAD, runThroughput, THREADS, type ThroughputResult } from './throughput.ts';
import { runTokens, TOKEN_COUNT, type TokensRow } from './tokens.ts';

const PACE = `400 ms to 1st token · 50 tok/s · ${REPLY_TOKENS}-token replies · Discord limits`;
const RAISED = 'raised limits';
/** What the short settings in the table stand for. */
const LEGEND = [
  "Discord limits: the Discord emulator's defaults, Discord's own: 5 message creates and 5 edits per 5 s per channel.",
  "raised limits: the emulator's per-channel limits raised out of the way (discord.js still caps the bot at 50 requests/s).",
  'baseline: the naive fork with the openai SDK against the same emulator, no Discord: list all items, copy the',
  '  conversation once per alternative (20 items per call), ask each copy in turn. T(1) baseline: one response.',
  'threadfork wall times run to the last reply finished in Discord (posted, final edit done); "at the provider" to the',
  '  last token streamed by the OpenAI emulator.',
  'streaming CPU (part 6, in this process, no network): deltas through createThinkFilter and startStreamingReply into a',
  '  fake channel, under virtual time; baseline: stripThink of the whole reply at every delta, as the core did before.',
  'history length (part 7, in this process): the core on the real SQLite store with a backend that answers at once;',
  '  CPU per turn on a thread whose branch holds 100 or 20,000 items of about 1 kB (alternating runs of 40 turns).',
];

function historyRows(r: HistoryResult): Row[] {
  const t = r.tree;
  return [
    {
      part: '7',
      figure: `bot CPU per turn at ${SHORT_HISTORY} · ${LONG_HISTORY} items of history (target ratio <= 1.3)`,
      ours: `${r.cpuMsPerTurnShort.toFixed(1)} ms · ${r.cpuMsPerTurnLong.toFixed(1)} ms (ratio ${r.ratio.toFixed(2)})`,
      baseline: '',
      ratio: '',
      settings: 'SQLite store · conversations-like backend · 2 × 40 turns each',
    },
    {
      part: '7',
      figure: `a ${t.levels}-level tree (${t.branches} branches): list · render 2 pages · switch · prune (${t.pruned}) · a turn`,
      ours: `${t.listMs.toFixed(0)} · ${t.renderMs.toFixed(0)} · ${t.switchMs.toFixed(0)} · ${t.pruneMs.toFixed(0)} · ${t.turnMs.toFixed(0)} ms; ${t.listed === t.branches && t.pagesFit && t.answered ? 'all fine' : `NOT FINE: listed ${t.listed}, pages fit ${t.pagesFit}, answered ${t.answered}`}`,
      baseline: '',
      ratio: '',
      settings: 'every vote a level deeper; a losing sibling every 10 levels',
    },
  ];
}

const ratio = (a: number, b: number) => (b === 0 ? '–' : `${(a / b).toFixed(2)}`);

function latencyRows({ rows }: LatencyResult): Row[] {
  const t1 = rows[0]!;
  const visible = rows.map(
    (r): Row => ({
      part: '1',
      figure:
        r.n === 1
          ? 'T(1): one chat turn (no fork), message → reply finished in Discord'
          : `T(${r.n}): /alternatives count ${r.n} → last alternative finished in Discord`,
      ours: `${seconds(r.visibleMs)} (T/T(1) ${(r.visibleMs / t1.visibleMs).toFixed(2)})`,
      baseline: seconds(r.baselineMs),
      ratio: ratio(r.visibleMs, r.baselineMs),
      settings: `${PACE} · 2-turn history`,
    }),
  );
  const model = rows.map(
    (r): Row => ({
      part: '1',
      figure: `T(${r.n}) at the provider: → last token of the last alternative`,
      ours: `${seconds(r.modelMs)} (T/T(1) ${(r.modelMs / t1.modelMs).toFixed(2)})`,
      baseline: seconds(r.baselineMs),
      ratio: ratio(r.modelMs, r.baselineMs),
      settings: 'same runs as above',
    }),
  );
  const firstWords = rows.map(
    (r): Row => ({
      part: '1',
      figure:
        r.n === 1
          ? 'T(1): first words of the reply in Discord, after its first token'
          : `T(${r.n}): first words of each alternative in Discord, after its first token (max)`,
      ours: `${r.firstWordsMs.map((ms) => seconds(ms)).join(' · ')} (${seconds(Math.max(...r.firstWordsMs))})`,
      baseline: '',
      ratio: '',
      settings: 'same runs as above; target: within 1.5 s',
    }),
  );
  return [...visible, ...model, ...firstWords];
}

function budgetRows({ budget: b }: LatencyResult): Row[] {
  const settings = `part 1's ${b.streamedReplies} streamed messages (1 lone reply, 4 live ballots of 2-5 alternatives) · Discord limits`;
  return [
    {
      part: '4',
      figure: 'edits per streamed message: mean · max (a lone reply)',
      ours: `${b.editsPerReplyMean.toFixed(1)} · ${b.editsPerReplyMax} (${b.editsSingleReply})`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '4',
      figure: 'most edits of one thread in any 5 s (Discord allows 5)',
      ours: `${b.editsIn5sMax}`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '4',
      figure: '429 responses received (target: none)',
      ours: `${b.rateLimited} of ${b.discordRequests} requests`,
      baseline: '',
      ratio: '',
      settings: 'all of part 1 · Discord limits',
    },
    {
      part: '4',
      figure: 'longest gap between visible updates: a lone reply · a live ballot',
      ours: `${seconds(b.longestGapSingleReplyMs)} · ${seconds(b.longestGapMs)}`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '4',
      figure: 'longest wait from the command for the first words of a reply or alternative',
      ours: seconds(b.firstVisibleMsMax),
      baseline: '',
      ratio: '',
      settings,
    },
  ];
}

function forkRows(rows: readonly ForkCostRow[]): Row[] {
  const cost = (c: { calls: number; bytes: number; ms?: number }) =>
    `${c.calls} call${c.calls === 1 ? '' : 's'} · ${kilobytes(c.bytes)}${c.ms === undefined ? '' : ` · ${c.ms.toFixed(0)} ms`}`;
  const settings = `count ${FORK_COUNT} + prompt · 0 latency · ${RAISED} · median of ${rows[0]?.repetitions ?? 3}`;
  return [
    ...rows.map(
      (r): Row => ({
        part: '2',
        figure: `one /alternatives at ${r.items} items of history: calls · request bytes · wall`,
        ours: cost(r.ours),
        baseline: cost(r.baseline),
        ratio: `${ratio(r.ours.calls, r.baseline.calls)} · ${ratio(r.ours.bytes, r.baseline.bytes)} · ${ratio(r.ours.ms, r.baseline.ms)}`,
        settings,
      }),
    ),
    {
      part: '2',
      figure: 'then closing the vote (the winner extends the parent conversation)',
      ours: rows.map((r) => `${r.items}: ${cost(r.close)}`).join('; '),
      baseline: '(its copies are made up front)',
      ratio: '',
      settings: 'same threads',
    },
  ];
}

function throughputRows(t: ThroughputResult): Row[] {
  const settings = `${THREADS} threads × ${MESSAGES_PER_THREAD} messages posted at once · 0 latency · ${RAISED}`;
  const routes = t.discordRoutes;
  const typing = routes['POST /channels/:channel_id/typing'] ?? 0;
  const posts = routes['POST /channels/:channel_id/messages'] ?? 0;
  const edits = routes['PATCH /channels/:channel_id/messages/:message_id'] ?? 0;
  return [
    {
      part: '3',
      figure: 'turns per second',
      ours: t.turnsPerSecond.toFixed(1),
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '3',
      figure: 'Discord requests per second (discord.js caps a bot at 50/s)',
      ours: `${t.discordRequestsPerSecond.toFixed(1)} (per turn: ${(typing / t.turns).toFixed(2)} typing, ${(posts / t.turns).toFixed(2)} post, ${(edits / t.turns).toFixed(2)} edit)`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '3',
      figure:
        'bot-side overhead per turn, one thread alone: p50 · p99 (post → reply finished − emulator time)',
      ours: `${t.soloOverheadP50Ms.toFixed(1)} ms · ${t.soloOverheadP99Ms.toFixed(1)} ms`,
      baseline: '',
      ratio: '',
      settings: `1 thread, ${MESSAGES_PER_THREAD} messages one after another · 0 latency · ${RAISED}`,
    },
    {
      part: '3',
      figure: 'same under the load (from max(post, previous reply of the thread)): p50 · p99',
      ours: `${seconds(t.overheadP50Ms)} · ${seconds(t.overheadP99Ms)}`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '3',
      figure: 'CPU per turn: bot process · emulators',
      ours: `${t.botCpuMsPerTurn === undefined ? '?' : t.botCpuMsPerTurn.toFixed(1)} ms · ${t.emulatorsCpuMsPerTurn.toFixed(1)} ms`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '3',
      figure: 'peak memory of the bot process (VmHWM)',
      ours:
        t.peakMemoryMb === undefined
          ? 'unavailable'
          : `${t.peakMemoryMb.toFixed(0)} MB (${t.memoryAfterStartMb?.toFixed(0) ?? '?'} MB after start)`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '3',
      figure: 'nothing lost: messages answered · each reply answers its message, in order',
      ours: `${t.answered}/${t.turns} · ${t.inOrder ? 'yes' : `NO: ${t.problems.join('; ')}`}`,
      baseline: '',
      ratio: '',
      settings: `${settings} · ${t.rateLimited} × 429`,
    },
  ];
}

function tokenRows(rows: readonly TokensRow[]): Row[] {
  return rows.map((r) => ({
    part: '5',
    figure: `input tokens billed per /alternatives, BACKEND=${r.backend}`,
    ours: `${r.billedInputTokens} (${r.requests} request${r.requests === 1 ? '' : 's'})`,
    baseline: `${TOKEN_COUNT} × ${r.contextTokens} = ${TOKEN_COUNT * r.contextTokens}`,
    ratio: ratio(r.billedInputTokens, TOKEN_COUNT * r.contextTokens),
    settings: `count ${TOKEN_COUNT} · 10 turns of history + prompt = ${r.contextTokens} tokens`,
  }));
}

const wanted = new Set(process.argv.slice(2).filter((a) => /^[1-7]$/.test(a)));
const runs = (part: string) => wanted.size === 0 || wanted.has(part) || (part === '4' && wanted.has('1'));
const log = (line: string) => process.stderr.write(`${line}\n`);

const host = machine();
console.log(`threadfork benchmark · ${new Date().toISOString()}`);
console.log(`machine: ${describeMachine(host)}`);
console.log(
  'The bot runs as `npm start` does, in a child process; both emulators run in this process, on the same cores.\n',
);

const started = now();
const results: Record<string, unknown> = {};
const rows: Row[] = [];
const failures: string[] = [];
async function part<T>(name: string, run: () => Promise<T>, toRows: (result: T) => Row[]): Promise<void> {
  log(`${name}…`);
  const t0 = now();
  try {
    const result = await run();
    results[name] = result;
    rows.push(...toRows(result));
    log(`${name} done in ${seconds(now() - t0)}`);
  } catch (error) {
    failures.push(`${name}: ${(error as Error).stack ?? String(error)}`);
    log(`${name} FAILED: ${(error as Error).message}`);
  }
}

// First, while nothing else runs: part 6 replaces the timers with virtual ones while it measures.
if (runs('6')) await part('streaming', () => runStreaming(log), streamingRows);
if (runs('1'))
  await part(
    'latency',
    () => runLatency(log),
    (r) => [...latencyRows(r), ...budgetRows(r)],
  );
if (runs('2')) await part('forkCost', () => runForkCost(log), forkRows);
if (runs('3')) await part('throughput', () => runThroughput(log), throughputRows);
if (runs('5')) await part('tokens', () => runTokens(log), tokenRows);
if (runs('7')) await part('history', () => runHistory(log), historyRows);

const order = ['1', '2', '3', '4', '5', '6', '7'];
rows.sort((a, b) => order.indexOf(a.part) - order.indexOf(b.part));
console.log(renderTable(rows));
console.log();
for (const line of LEGEND) console.log(line);
const totalMs = now() - started;
console.log(`\nbench ran ${seconds(totalMs)}`);
for (const failure of failures) console.error(`\nFAILED ${failure}`);

if (wanted.size === 0 && failures.length === 0) {
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const json = {
    date: new Date().toISOString(),
    machine: host,
    totalSeconds: round(totalMs / 1000, 1),
    legend: LEGEND,
    settings: {
      pace: { firstTokenMs: 400, tokensPerSecond: 50, replyTokens: REPLY_TOKENS },
      discordDefaultLimits: { messageCreate: '5 per 5 s per channel', messageEdit: '5 per 5 s per channel' },
      raisedDiscordLimitsFor: ['forkCost', 'throughput', 'tokens'],
      streaming: {
        deltas: STREAMING_DELTAS,
        deltaCharacters: '2-6',
        deltasPerSecond: DELTAS_PER_SECOND,
        replies: REPLY_KINDS,
      },
    },
    results,
    table: rows,
  };
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  console.log(`figures written to ${join('bench', 'results', 'latest.json')}`);
}
process.exit(failures.length > 0 ? 1 : 0);
