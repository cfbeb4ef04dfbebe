// Starts a standalone Discord emulator: node test/emulators/discord/cli.ts [--port N]
// Point the bot at it with DISCORD_API_URL=<apiUrl> DISCORD_TOKEN=<botToken>, then type on stdin:
//   say <text>                       alice posts <text> in #general
//   cmd <name> [sub] [key=value...]  alice runs a slash command in #general
//   click <messageId> <customId>     alice clicks a button
//   messages                         prints #general
import { createInterface } from 'node:readline';
import { createDiscordEmulator } from './index.ts';

const portArg = process.argv.indexOf('--port');
const port = portArg >= 0 ? Number(process.argv[portArg + 1]) : Number(process.env.PORT ?? 0);

const emulator = await createDiscordEmulator({ port: Number.isFinite(port) ? port : 0 });
const alice = emulator.createUser({ username: 'alice' });
const mod = emulator.createUser({ username: 'mod', manageThreads: true });

process.stdout.write(
  `${JSON.stringify(
    {
      apiUrl: emulator.apiUrl,
      botToken: emulator.botToken,
      applicationId: emulator.applicationId,
      botUserId: emulator.botUserId,
      guildId: emulator.guildId,
      channelId: emulator.channelId,
      users: { alice: alice.id, mod: mod.id },
      env: { DISCORD_API_URL: emulator.apiUrl, DISCORD_TOKEN: emulator.botToken },
    },
    null,
    2,
  )}\n`,
);

function parseValue(v: string): string | number | boolean {
  if (v === 'true' || v === 'false') return v === 'true';
  return v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
}

function run(line: string): void {
  const [verb = '', ...rest] = line.trim().split(/\s+/);
  const channelId = emulator.channelId;
  if (verb === 'say') {
    emulator.postMessage(channelId, alice.id, line.trim().slice(4));
  } else if (verb === 'cmd' && rest[0]) {
    const [name, ...args] = rest;
    const sub = args[0] && !args[0].includes('=') ? args.shift() : undefined;
    const options = Object.fromEntries(
      args.map((a) => {
        const [k = '', ...v] = a.split('=');
        return [k, parseValue(v.join('='))];
      }),
    );
    const handle = emulator.runCommand({
      channelId,
      userId: alice.id,
      name: name ?? '',
      options,
      ...(sub ? { subcommand: sub } : {}),
    });
    handle.response().then(
      (m) => process.stdout.write(`response: ${m.content}\n`),
      (e: unknown) => process.stdout.write(`no response: ${String(e)}\n`),
    );
  } else if (verb === 'click' && rest[0] && rest[1]) {
    emulator.clickButton({ messageId: rest[0], customId: rest[1], userId: alice.id });
  } else if (verb === 'messages') {
    for (const m of emulator.messages(channelId))
      process.stdout.write(`${m.id} <${m.authorId}> ${m.content}\n`);
  } else if (verb !== '') {
    process.stdout.write(
      'commands: say <text> | cmd <name> [sub] [k=v...] | click <messageId> <customId> | messages\n',
    );
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  try {
    run(line);
  } catch (err) {
    process.stdout.write(`error: ${String(err)}\n`);
  }
});

const stop = (): void => {
  void emulator.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
