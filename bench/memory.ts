/**
 * Memory over many turns: the bot (the real entry point, as `npm start` runs it) answers TURNS messages spread over
 * THREADS managed threads, the model at zero latency and Discord's per-channel limits raised. Messages are posted a
 * round at a time (ten in every thread at once), each round once the previous one is answered. The bot's resident memory and
 * V8 heap (read from its own metrics endpoint) are sampled after 1,000 turns and at the end: flat is the target, since
 * nothing the bot keeps per turn should outlive the turn (its caches are bounded, its state is in the store).
 *
 * Run alone: node_modules/.bin/node bench/memory.ts [turns] [threads]   (default 10000 100)
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { botPids, createWorld, peakMemoryKb } from '../test/e2e/harness.ts';
import { finishedReplies, NO_LATENCY, now, poll, RAISED_DISCORD_LIMITS } from './common.ts';

export interface MemorySample {
  turns: number;
  /** Resident set of the bot process (VmRSS). */
  rssMb: number | undefined;
  /** V8 heap in use, as the bot's own metrics report it (not right after a GC: it rises and falls between them). */
  heapUsedMb: number | undefined;
  /** Memory V8 knows of outside its heap (Buffers, ArrayBuffers), from the same metrics. */
  externalMb: number | undefined;
  elapsedMs: number;
}

export interface MemoryResult {
  threads: number;
  turns: number;
  samples: MemorySample[];
  /** VmHWM at the end: the peak over the whole run. */
  peakRssMb: number | undefined;
  turnsPerSecond: number;
}

/** Turns of part 8 of `npm run bench`. */
export const MEMORY_TURNS = 10_000;

/** Messages posted at once in each thread per round: 1,000 turns a round at 100 threads. */
const PER_ROUND = 10;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function rssKb(pid: number): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match?.[1] ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function metricBytes(port: number, names: string[]): Promise<(number | undefined)[]> {
  try {
    const lines = (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).split('\n');
    return names.map((name) => {
      const line = lines.find((l) => l.startsWith(`${name} `));
      return line ? Number(line.split(' ')[1]) : undefined;
    });
  } catch {
    return names.map(() => undefined);
  }
}

export async function runMemory(
  log: (line: string) => void,
  {
    turns = MEMORY_TURNS,
    threads = 100,
    sampleAt = [1000],
  }: { turns?: number; threads?: number; sampleAt?: number[] } = {},
): Promise<MemoryResult> {
  const world = await createWorld({ discord: { rateLimits: RAISED_DISCORD_LIMITS } });
  try {
    const port = await freePort();
    // MALLOC_ARENA_MAX, when set for the benchmark, is handed to the bot (glibc's allocator arenas: RSS outside V8).
    const malloc = process.env.MALLOC_ARENA_MAX;
    await world.startBot({
      LOG_LEVEL: 'info',
      METRICS_PORT: String(port),
      ...(malloc ? { MALLOC_ARENA_MAX: malloc } : {}),
    });
    const pid = botPids(world)[0];
    world.openai.setLatency(NO_LATENCY);
    const users = Array.from({ length: 10 }, (_, i) => world.discord.createUser({ username: `user${i}` }));
    const open: { threadId: string; user: { id: string } }[] = [];
    for (let i = 0; i < threads; i++) {
      const user = users[i % users.length]!;
      const threadId = world.discord.createThread({
        parentId: world.discord.channelId,
        name: `memory ${i}`,
        ownerId: user.id,
      });
      open.push({ threadId, user });
    }
    await Promise.all(
      open.map(({ threadId, user }) =>
        world.discord
          .runCommand({ channelId: threadId, userId: user.id, name: 'chat' })
          .response({ timeoutMs: 60_000 }),
      ),
    );

    const sample = async (done: number, start: number): Promise<MemorySample> => {
      const rss = pid === undefined ? undefined : rssKb(pid);
      const [heap, external] = await metricBytes(port, [
        'nodejs_heap_size_used_bytes',
        'nodejs_external_memory_bytes',
      ]);
      const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 1024 / 1024);
      const s = {
        turns: done,
        rssMb: rss === undefined ? undefined : rss / 1024,
        heapUsedMb: mb(heap),
        externalMb: mb(external),
        elapsedMs: now() - start,
      };
      log(
        `  after ${done} turns: RSS ${s.rssMb?.toFixed(0) ?? '?'} MB · heap ${s.heapUsedMb?.toFixed(0) ?? '?'} MB · external ${s.externalMb?.toFixed(0) ?? '?'} MB · ${(s.elapsedMs / 1000).toFixed(0)} s`,
      );
      return s;
    };

    const samples: MemorySample[] = [await sample(0, now())];
    const start = now();
    // A round: PER_ROUND messages posted at once in every thread (each thread answers its own one by one).
    const perRound = threads * PER_ROUND;
    const rounds = Math.ceil(turns / perRound);
    let done = 0;
    for (let round = 1; round <= rounds; round++) {
      const count = Math.min(perRound, turns - done);
      const requestsBefore = world.discord.requests.length;
      for (let k = 0; k < count; k++) {
        const { threadId, user } = open[k % threads]!;
        world.discord.postMessage(threadId, user.id, `round ${round} message ${Math.floor(k / threads) + 1}`);
      }
      // Cheap first (the emulators share this process: reading every thread's messages often would slow them):
      // wait for one post per turn, then check that every reply is finished.
      await poll(
        () =>
          world.discord.requests
            .slice(requestsBefore)
            .filter((r) => r.route === 'POST /channels/:channel_id/messages' && r.status === 200).length >=
          count,
        { timeoutMs: 600_000, intervalMs: 100, message: `round ${round} posted` },
      );
      const expected = done + count;
      await poll(
        () =>
          open.reduce((sum, { threadId }) => sum + finishedReplies(world, threadId).length, 0) >= expected,
        { timeoutMs: 120_000, intervalMs: 250, message: `round ${round} answered` },
      );
      done = expected;
      if (sampleAt.includes(done) || done === turns) samples.push(await sample(done, start));
    }
    const peak = pid === undefined ? undefined : peakMemoryKb(pid);
    return {
      threads,
      turns: done,
      samples,
      peakRssMb: peak === undefined ? undefined : peak / 1024,
      turnsPerSecond: (done / (now() - start)) * 1000,
    };
  } finally {
    await world.close();
  }
}

if (import.meta.main) {
  const turns = Number(process.argv[2] ?? MEMORY_TURNS);
  const threads = Number(process.argv[3] ?? 100);
  console.log(`memory: ${turns} turns over ${threads} threads (0 latency, raised limits)`);
  // Alone, it samples after every round.
  const sampleAt = Array.from(
    { length: Math.ceil(turns / (threads * PER_ROUND)) },
    (_, i) => (i + 1) * threads * PER_ROUND,
  );
  const result = await runMemory((line) => console.log(line), { turns, threads, sampleAt });
  console.log(
    `peak RSS ${result.peakRssMb?.toFixed(0) ?? '?'} MB · ${result.turnsPerSecond.toFixed(1)} turns/s\n${JSON.stringify(result)}`,
  );
}
