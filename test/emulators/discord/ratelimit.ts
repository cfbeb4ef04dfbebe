// Fixed-window buckets. The headers describe the window exactly, so a client that paces itself by
// X-RateLimit-Remaining / -Reset-After (as discord.js does) never gets a 429.

export interface BucketSpec {
  /** State key (bucket hash plus major parameter). */
  key: string;
  /** Value of X-RateLimit-Bucket (shared by all major parameters, as on Discord). */
  hash: string;
  limit: number;
  windowMs: number;
  /** Count the request but never refuse it (interaction callbacks). */
  unenforced?: boolean;
}

export interface TakeResult {
  ok: boolean;
  headers: Record<string, string>;
  retryAfterMs: number;
}

function secs(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

export class RateLimiter {
  #windows = new Map<string, { start: number; count: number }>();

  take(spec: BucketSpec, now: number = Date.now()): TakeResult {
    let w = this.#windows.get(spec.key);
    if (!w || now >= w.start + spec.windowMs) {
      w = { start: now, count: 0 };
      this.#windows.set(spec.key, w);
    }
    const resetAt = w.start + spec.windowMs;
    const ok = spec.unenforced === true || w.count < spec.limit;
    if (ok) w.count++;
    const headers: Record<string, string> = {
      'X-RateLimit-Limit': String(spec.limit),
      'X-RateLimit-Remaining': String(Math.max(0, spec.limit - w.count)),
      'X-RateLimit-Reset': secs(resetAt),
      'X-RateLimit-Reset-After': secs(resetAt - now),
      'X-RateLimit-Bucket': spec.hash,
    };
    if (!ok) {
      headers['Retry-After'] = secs(resetAt - now);
      headers['X-RateLimit-Scope'] = 'user';
    }
    return { ok, headers, retryAfterMs: ok ? 0 : resetAt - now };
  }
}

/**
 * Discord's global limit: requests per second per bot token, whatever the route and however many connections or
 * processes make them (interaction callbacks and webhooks by token are not counted, as on Discord). A refusal is a
 * 429 with `global: true` in the body and X-RateLimit-Global / X-RateLimit-Scope: global, and no bucket headers.
 */
export class GlobalLimiter {
  #window: { start: number; count: number } | undefined;
  #perSecond: number;

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
  }

  /** Counts one request; undefined when it may go on, else the 429's headers and body. */
  take(
    now: number = Date.now(),
  ): { headers: Record<string, string>; body: Record<string, unknown> } | undefined {
    if (this.#perSecond <= 0) return undefined;
    if (!this.#window || now >= this.#window.start + 1000) this.#window = { start: now, count: 0 };
    if (this.#window.count < this.#perSecond) {
      this.#window.count++;
      return undefined;
    }
    const retryAfterMs = this.#window.start + 1000 - now;
    return {
      headers: {
        'Retry-After': secs(retryAfterMs),
        'X-RateLimit-Global': 'true',
        'X-RateLimit-Scope': 'global',
      },
      body: { message: 'You are being rate limited.', retry_after: retryAfterMs / 1000, global: true },
    };
  }
}
