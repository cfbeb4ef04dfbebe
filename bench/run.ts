/**
 * `npm run bench`: the real bot (a child process, exactly as `npm start`) against the Discord and OpenAI emulators on
 * loopback. Prints the machine, then one table of figures, each with the settings that produced it, and writes the
 * same figures as JSON to bench/results/latest.json. Figures are printed, never asserted.
 *
 * Part 6 (streaming CPU) runs in this process alone, with no bot and no emulator: see bench/streaming.ts. Part 7
 * (history length) runs the core in this process on the real SQLite store: see bench/history.ts. Part 8 (memory)
 * has the bot answer 10,000 turns over 100 threads and samples its memory: see bench/memory.ts. Part 9 (several
 * machines) runs one and then three bot processes on a private redis-server behind `npm run rest-proxy`: see
 * bench/machines.ts.
 *
 * `npm run bench -- 1 3` runs parts 1 and 3 only (part 4 comes with part 1); only a full run writes latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kilobytes, now, round, seconds } from './common.ts';
import {
  FORK_COUNT,
  type ForkCachingRow,
  type ForkCostRow,
  runForkCaching,
  runForkCost,
} from './fork-cost.ts';
import { type HistoryResult, LONG_HISTORY, runHistory, SHORT_HISTORY } from './history.ts';
import { type LatencyResult, REPLY_TOKENS, runLatency } from './latency.ts';
import {
  LONG_MODEL,
  LONG_THRESHOLD,
  LONG_TURNS,
  LONG_WINDOW,
  type LongThreadResult,
  runLongThread,
} from './long-thread.ts';
import { describeMachine, machine } from './machine.ts';
import { MACHINE_MESSAGES, MACHINE_THREADS, type MachinesResult, runMachines } from './machines.ts';
import { MEMORY_TURNS, type MemoryResult, type MemorySample, runMemory } from './memory.ts';
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
  'several machines (part 9): 1 or 3 bot processes on one Redis, all through one REST proxy (npm run rest-proxy), as',
  "  the guild's shard (the emulator has one guild). Discord's global limit, 50 requests/s for the whole bot (enforced",
  '  by the emulator; the proxy allows 45), bounds all machines together: at about 1.5 requests a turn, ~30 turns/s',
  '  however many machines. Here the 3 "machines" share the same 2 cores (and each gets every event of the shard),',
  '  so CPU binds first and 3 are slower than 1; on separate machines the global limit is the ceiling.',
  `long thread (part 10): ${LONG_TURNS} turns of ~20-word messages in one thread on ${LONG_MODEL} (${LONG_WINDOW}-token`,
  '  window), 0 latency, raised limits, SQLite on tmpfs; tokens as the OpenAI emulator counts what the model read;',
  '  naive: every turn sends the whole history. Conversations and responses: OpenAI server-side compaction; chat: the',
  '  rolling summary. Bot time per turn: message posted -> reply finished in Discord, one message at a time.',
];

function longThreadRows(results: readonly LongThreadResult[]): Row[] {
  return results.flatMap((r): Row[] => {
    const settings = `BACKEND=${r.backend} · threshold ${LONG_THRESHOLD} of ${LONG_WINDOW} tokens`;
    const at = Object.entries(r.inputAt)
      .map(([turn, tokens]) => `${turn}: ${tokens}`)
      .join(' · ');
    return [
      {
        part: '10',
        figure: `input tokens per turn at turn n (condensed from turn ${r.condensedFrom}; most in the 2nd half)`,
        ours: `${at} (max ${r.maxLateInput})`,
        baseline: '',
        ratio: '',
        settings,
      },
      {
        part: '10',
        figure: `input tokens of all ${r.turns} turns (of which summaries/compactions)`,
        ours: `${r.totalInputTokens.toLocaleString('en-US')} (${r.condensingInputTokens.toLocaleString('en-US')})`,
        baseline: r.naiveInputTokens.toLocaleString('en-US'),
        ratio: ratio(r.totalInputTokens, r.naiveInputTokens),
        settings,
      },
      {
        part: '10',
        figure: 'bot time per turn, median of 10, around turn 100 · around turn 2,000',
        ours: `${r.msPerTurnAt100.toFixed(0)} ms · ${r.msPerTurnAt2000.toFixed(0)} ms`,
        baseline: '',
        ratio: ratio(r.msPerTurnAt2000, r.msPerTurnAt100),
        settings: `${settings} · whole run ${r.wallSeconds.toFixed(0)} s`,
      },
    ];
  });
}

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

function forkCachingRows(rows: readonly ForkCachingRow[]): Row[] {
  const settings =
    'count 3 + prompt · history ≈ 1,500 tokens · 400 ms to 1st token · 50 tok/s · 200-token replies · gpt-4.1-mini prices';
  const of = (backend: string, mode: string) => rows.find((r) => r.backend === backend && r.mode === mode);
  const backends = [...new Set(rows.map((r) => r.backend))];
  return backends.flatMap((backend): Row[] => {
    const warm = of(backend, 'warm');
    const cold = of(backend, 'cold');
    const off = of(backend, 'off');
    const x = (r: ForkCachingRow | undefined, pick: (r: ForkCachingRow) => number) =>
      r ? `${pick(r).toFixed(2)}` : '–';
    return [
      {
        part: '2',
        figure: `billed input of one /alternatives over one turn's at the full price (${backend}): after a turn · cold cache`,
        ours: `${x(warm, (r) => r.billedOverTurn)} · ${x(cold, (r) => r.billedOverTurn)} (cached ${warm?.cached.join('/') ?? '–'} · ${cold?.cached.join('/') ?? '–'})`,
        baseline: `${x(off, (r) => r.billedOverTurn)} without caching`,
        ratio: warm && off ? ratio(warm.billedOverTurn, off.billedOverTurn) : '',
        settings,
      },
      {
        part: '2',
        figure: `T(3)/T(1) at the provider, the others started at the first one's first token (${backend}): after a turn · cold`,
        ours: `${x(warm, (r) => r.providerRatio)} · ${x(cold, (r) => r.providerRatio)}`,
        baseline: `${x(off, (r) => r.providerRatio)} without caching`,
        ratio: '',
        settings,
      },
    ];
  });
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
      figure: 'peak memory of the bot process (VmHWM; target <= 200 MB)',
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

function machinesRows({ runs }: MachinesResult): Row[] {
  const settings = `${MACHINE_THREADS} threads × ${MACHINE_MESSAGES} messages at once · 0 latency · ${RAISED} · one REST proxy`;
  const one = runs.find((r) => r.machines === 1);
  return [
    ...runs.map(
      (r): Row => ({
        part: '9',
        figure: `turns per second, ${r.machines} machine${r.machines === 1 ? '' : 's'} (ceiling: Discord's global 50 requests/s)`,
        ours: `${r.turnsPerSecond.toFixed(1)} (${r.discordRequestsPerSecond.toFixed(1)} requests/s; ${r.answered}/${r.turns} answered)`,
        baseline: r.machines === 1 || !one ? '' : `${one.turnsPerSecond.toFixed(1)} (1 machine)`,
        ratio: r.machines === 1 || !one ? '' : ratio(r.turnsPerSecond, one.turnsPerSecond),
        settings: `${settings} · global 429s from Discord: ${r.discordGlobal429}, held back by the proxy: ${r.heldBackByProxy}`,
      }),
    ),
    ...runs
      .filter((r) => r.machines > 1)
      .map(
        (r): Row => ({
          part: '9',
          figure: `identify waits, ${r.machines} machines started at once (one bucket: 5 s apart, held 6 s)`,
          ours: r.identifyWaitsMs.map((ms) => seconds(ms)).join(' · '),
          baseline: '',
          ratio: '',
          settings: 'max_concurrency 1 · identify turns through Redis',
        }),
      ),
  ];
}

function memoryRows(m: MemoryResult): Row[] {
  const settings = `${m.threads} threads · ${m.turns / m.threads} messages each, 10 at a time · 0 latency · raised limits`;
  const at = (s: MemorySample) =>
    `${s.rssMb?.toFixed(0) ?? '?'} MB (heap ${s.heapUsedMb?.toFixed(0) ?? '?'} MB)`;
  const first = m.samples[0]!;
  const last = m.samples.at(-1)!;
  const rows: Row[] = [
    {
      part: '8',
      figure: `bot RSS after start · after ${last.turns.toLocaleString('en')} turns (target: flat)`,
      ours: `${at(first)} · ${at(last)}`,
      baseline: '',
      ratio: '',
      settings,
    },
    {
      part: '8',
      figure: 'bot RSS along the way · peak (VmHWM)',
      ours: `${m.samples
        .slice(1, -1)
        .map((s) => `${s.rssMb?.toFixed(0) ?? '?'} MB at ${s.turns.toLocaleString('en')}`)
        .join(' · ')} · peak ${m.peakRssMb?.toFixed(0) ?? '?'} MB`,
      baseline: '',
      ratio: '',
      settings: `${m.turnsPerSecond.toFixed(1)} turns/s`,
    },
  ];
  return rows;
}

const wanted = new Set(process.argv.slice(2).filter((a) => /^\d+$/.test(a)));
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
if (runs('2')) await part('forkCaching', () => runForkCaching(log), forkCachingRows);
if (runs('3')) await part('throughput', () => runThroughput(log), throughputRows);
if (runs('5')) await part('tokens', () => runTokens(log), tokenRows);
if (runs('7')) await part('history', () => runHistory(log), historyRows);
if (runs('8'))
  await part(
    'memory',
    () => runMemory(log, { turns: MEMORY_TURNS, threads: 100, sampleAt: [1000, 5000] }),
    memoryRows,
  );
if (runs('9')) await part('machines', () => runMachines(log), machinesRows);
if (runs('10')) await part('longThread', () => runLongThread(log), longThreadRows);

const order = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'];
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
      raisedDiscordLimitsFor: ['forkCost', 'throughput', 'tokens', 'memory', 'machines', 'longThread'],
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
