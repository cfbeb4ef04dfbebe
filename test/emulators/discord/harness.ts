// Shared set-up for the emulator's own tests: an emulator and a real discord.js client logged in to it.
import { Client, type ClientEvents, Events, GatewayIntentBits } from 'discord.js';
import { createDiscordEmulator, type DiscordEmulator, type DiscordEmulatorOptions } from './index.ts';

export const DEFAULT_INTENTS = [
  GatewayIntentBits.Guilds,
  GatewayIntentBits.GuildMessages,
  GatewayIntentBits.MessageContent,
];

export interface Harness {
  emu: DiscordEmulator;
  client: Client;
}

const open: Harness[] = [];

export async function start(
  opts: DiscordEmulatorOptions & { intents?: GatewayIntentBits[] } = {},
): Promise<Harness> {
  const { intents, ...emuOpts } = opts;
  const emu = await createDiscordEmulator(emuOpts);
  const client = new Client({ intents: intents ?? DEFAULT_INTENTS, rest: { api: emu.apiUrl } });
  const h = { emu, client };
  open.push(h);
  const ready = once(client, Events.ClientReady);
  await client.login(emu.botToken);
  await ready;
  return h;
}

/** Destroys every client and closes every emulator started by start(); call from afterEach. */
export async function stopAll(): Promise<void> {
  for (const h of open.splice(0)) {
    await h.client.destroy();
    await h.emu.close();
  }
}

/** The next event of that name (matching `filter`), as its argument list. */
export function once<K extends keyof ClientEvents>(
  client: Client,
  event: K,
  filter: (...args: ClientEvents[K]) => boolean = () => true,
): Promise<ClientEvents[K]> {
  return new Promise((resolve) => {
    const listener = (...args: ClientEvents[K]): void => {
      if (!filter(...args)) return;
      client.off(event, listener);
      resolve(args);
    };
    client.on(event, listener);
  });
}
