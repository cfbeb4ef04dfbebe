import { flushCompileCache } from 'node:module';
import { startBot } from './app.ts';
import { loadConfigOrExit, storeUrlSecrets } from './config.ts';
import { createLogger } from './logger.ts';

const config = loadConfigOrExit();

const logger = createLogger(config.logLevel, storeUrlSecrets(config.storeUrl));
try {
  const bot = await startBot(config, logger);
  logger.info('threadfork is running');
  // Written now rather than at exit, which a killed process never reaches (see src/node-runtime.ts).
  flushCompileCache();
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'stopping');
    bot.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stopping failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
} catch (error) {
  logger.fatal({ err: error }, 'threadfork could not start');
  process.exit(1);
}
