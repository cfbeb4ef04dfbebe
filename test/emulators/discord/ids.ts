import { randomBytes } from 'node:crypto';

const DISCORD_EPOCH = 1420070400000n;

/** Real-looking, strictly increasing snowflakes (17-19 digits, as discord.js' rate limit routing expects). */
export class Snowflakes {
  #last = 0n;
  #inc = 0n;

  next(at: number = Date.now()): string {
    let ts = BigInt(at) - DISCORD_EPOCH;
    if (ts < this.#last) ts = this.#last;
    if (ts === this.#last) {
      this.#inc += 1n;
      if (this.#inc >= 4096n) {
        ts += 1n;
        this.#inc = 0n;
      }
    } else {
      this.#inc = 0n;
    }
    this.#last = ts;
    return ((ts << 22n) | (1n << 17n) | this.#inc).toString();
  }
}

export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}

export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export function botTokenFor(userId: string): string {
  return `${Buffer.from(userId).toString('base64url')}.${randomToken(4)}.${randomToken(20)}`;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
