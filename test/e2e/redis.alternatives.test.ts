// The alternatives scenarios with every record and the thread lock in Redis.
import { afterAll, describe } from 'vitest';
import { startRedis } from '../redis-server.ts';
import { alternativesScenarios } from './scenarios/alternatives.ts';

const redis = await startRedis();
afterAll(() => redis?.stop());

describe.skipIf(!redis)('on the Redis store', () => {
  alternativesScenarios('conversations', { env: () => ({ STORE_URL: redis!.url }), label: 'Redis store' });
});
