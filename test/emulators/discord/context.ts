import type { Gateway } from './gateway.ts';
import type { Store } from './state.ts';
import type { WindowLimit } from './types.ts';

export interface Config {
  messageCreate: WindowLimit;
  messageEdit: WindowLimit;
  /** Every other route, per route and major parameter. */
  defaultLimit: WindowLimit;
  interactionAckMs: number;
  interactionTokenTtlMs: number;
  /** The shard count GET /gateway/bot recommends. */
  recommendedShards: number;
  /** Identify limits; `enforced` false: identifies are counted, never refused. */
  identify: { enforced: boolean; maxConcurrency: number; perDay: number; intervalMs: number };
  /** Bot-token requests per second across all connections; 0: none. */
  globalRequestsPerSecond: number;
}

/** What the REST routes, the gateway and the driver share. */
export interface Ctx {
  store: Store;
  gateway: Gateway;
  config: Config;
  botToken: string;
  /** http://127.0.0.1:PORT (set once listening). */
  baseUrl: string;
  timers: Set<ReturnType<typeof setTimeout>>;
}

/** A timer that never keeps the process alive and is cleared by close(). */
export function later(ctx: Ctx, ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    ctx.timers.delete(t);
    fn();
  }, ms);
  t.unref();
  ctx.timers.add(t);
}
