import { Events } from 'discord.js';
import { createDiscordClient, registerCommands } from './app.ts';
import { ConfigError, parseConfig, readEnv } from './config.ts';

// `npm run register`: registers the slash commands without starting the bot (the bot also does it at start).
try {
  const config = parseConfig(readEnv());
  const client = createDiscordClient(config);
  const ready = new Promise<Parameters<typeof registerCommands>[0]>((resolve) =>
    client.once(Events.ClientReady, resolve),
  );
  await client.login(config.discord.token);
  const count = await registerCommands(await ready, config.discord.guildId);
  console.log(
    `Registered ${count} commands ${config.discord.guildId ? `in guild ${config.discord.guildId}` : 'globally (they can take up to an hour to appear)'}.`,
  );
  await client.destroy();
} catch (error) {
  console.error(
    error instanceof ConfigError ? error.message : `Registering failed: ${(error as Error).message}`,
  );
  process.exit(1);
}
