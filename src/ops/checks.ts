/** The readiness checks of one bot process: its Discord gateway connection and its store. */
import { type Client, Status } from 'discord.js';
import type { Store } from '../core/ports.ts';

/** A key nobody writes: reading it proves the store answers, whatever it holds. */
export const STORE_PROBE_KEY = 'health:probe';

/** Passes when every gateway shard of the client is connected and ready (resumed after a drop counts). */
export function gatewayCheck(client: Client): () => Promise<void> {
  return async () => {
    const shards = [...client.ws.shards.values()];
    if (shards.length === 0) throw new Error('not connected to the Discord gateway yet');
    const down = shards.filter((shard) => shard.status !== Status.Ready);
    if (down.length > 0)
      throw new Error(
        `gateway ${down.map((shard) => `shard ${shard.id} is ${Status[shard.status] ?? shard.status}`).join(', ')}`,
      );
  };
}

/** Passes when the store answers a read. Give it the store without instrumentation: probes are not traffic. */
export function storeCheck(store: Store): () => Promise<void> {
  return async () => {
    await store.get(STORE_PROBE_KEY);
  };
}
