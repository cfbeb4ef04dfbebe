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
