// The gateway: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, dispatches with sequence numbers,
// RESUME (replay of missed dispatches, then RESUMED). Sharding: IDENTIFY may carry `shard: [id, count]`; the guild's
// events go to the sessions of its shard ((guild_id >> 22) % count), as in Discord. Several sessions on one shard all
// get its events (Discord does the same), unless a test delivers one event to a chosen session (deliverVia).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { Config } from './context.ts';
import { randomToken } from './ids.ts';
import type { Json, Store } from './state.ts';
import type { GatewaySessionView, IdentifyView } from './types.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export const Intents = {
  GUILDS: 1 << 0,
  GUILD_MEMBERS: 1 << 1,
  GUILD_MESSAGES: 1 << 9,
  GUILD_MESSAGE_TYPING: 1 << 11,
  DIRECT_MESSAGES: 1 << 12,
  MESSAGE_CONTENT: 1 << 15,
} as const;

const Op = {
  DISPATCH: 0,
  HEARTBEAT: 1,
  IDENTIFY: 2,
  PRESENCE_UPDATE: 3,
  RESUME: 6,
  RECONNECT: 7,
  REQUEST_GUILD_MEMBERS: 8,
  INVALID_SESSION: 9,
  HELLO: 10,
  HEARTBEAT_ACK: 11,
} as const;

const LOG_LIMIT = 5000;

export interface Session {
  id: string;
  intents: number;
  seq: number;
  log: { op: 0; s: number; t: string; d: unknown }[];
  socket: WebSocket | null;
  /** [shard_id, num_shards] from IDENTIFY ([0, 1] when the client sent none). */
  shard: [number, number];
}

/** The shard a guild belongs to: (guild_id >> 22) % num_shards. */
export function shardOf(guildId: string, numShards: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(numShards));
}

export interface GatewayEvent {
  at: number;
  dir: 'in' | 'out';
  op: number;
  t?: string;
  /** The session the frame was sent to or came from, once it has one. */
  session?: string;
}

export class Gateway {
  sessions = new Map<string, Session>();
  /** Opcodes and event names that went over the wire, for tests and timeout messages. */
  events: GatewayEvent[] = [];
  heartbeatIntervalMs = 41250;
  url = '';
  #wss = new WebSocketServer({ noServer: true });
  #store: Store;
  #botToken: string;
  /** While set (deliverVia), dispatches go to this session only. */
  #target: Session | undefined;
  /** Every IDENTIFY and its outcome (tests read it through the driver). */
  identifies: IdentifyView[] = [];
  #limits: Config['identify'];
  /** When each bucket's last accepted IDENTIFY came. */
  #lastIdentify = new Map<number, number>();
  /** The day's identify budget: accepted identifies since `#dayStart`. */
  #dayStart: number | undefined;
  #usedToday = 0;

  constructor(store: Store, botToken: string, limits: Config['identify']) {
    this.#store = store;
    this.#botToken = botToken;
    this.#limits = limits;
  }

  /** GET /gateway/bot's session_start_limit. */
  sessionStartLimit(): { total: number; remaining: number; reset_after: number; max_concurrency: number } {
    this.#rollDay(Date.now());
    return {
      total: this.#limits.perDay,
      remaining: Math.max(0, this.#limits.perDay - this.#usedToday),
      reset_after: this.#dayStart === undefined ? DAY_MS : this.#dayStart + DAY_MS - Date.now(),
      max_concurrency: this.#limits.maxConcurrency,
    };
  }

  #rollDay(now: number): void {
    if (this.#dayStart !== undefined && now >= this.#dayStart + DAY_MS) {
      this.#dayStart = undefined;
      this.#usedToday = 0;
    }
  }

  /** Whether an IDENTIFY of `shard` may start a session now; records it either way. */
  #admitIdentify(ws: WebSocket, shard: [number, number]): boolean {
    const now = Date.now();
    this.#rollDay(now);
    const bucket = shard[0] % this.#limits.maxConcurrency;
    const record = (outcome: IdentifyView['outcome']) => {
      this.identifies.push({ at: now, shard, bucket, outcome });
      if (this.identifies.length > LOG_LIMIT) this.identifies.splice(0, this.identifies.length - LOG_LIMIT);
    };
    if (this.#limits.enforced && this.#usedToday >= this.#limits.perDay) {
      record('over_budget');
      ws.close(4004, 'Authentication failed.');
      return false;
    }
    const last = this.#lastIdentify.get(bucket);
    if (this.#limits.enforced && last !== undefined && now - last < this.#limits.intervalMs) {
      record('invalid_session');
      this.#raw(ws, { op: Op.INVALID_SESSION, d: false });
      return false;
    }
    this.#lastIdentify.set(bucket, now);
    this.#dayStart ??= now;
    this.#usedToday += 1;
    record('ready');
    return true;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws));
  }

  /** Whether a client is connected on a session that got READY. */
  connected(): boolean {
    for (const s of this.sessions.values()) if (s.socket?.readyState === WebSocket.OPEN) return true;
    return false;
  }

  /** The sessions in the order they identified. */
  sessionViews(): GatewaySessionView[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.id,
      shard: [...s.shard],
      connected: s.socket?.readyState === WebSocket.OPEN,
      guildIds: this.#guildsOf(s),
    }));
  }

  /**
   * Runs `act` (which dispatches synchronously, like posting a message) so that its dispatches reach only the session
   * `sessionId`, as when several processes share a shard and Discord, or a load balancer in front of interactions,
   * hands an event to one of them. Undefined: the usual routing. `guildId`: the guild the event is in.
   */
  deliverVia<T>(sessionId: string | undefined, guildId: string, act: () => T): T {
    if (sessionId === undefined) return act();
    const session = this.sessions.get(sessionId);
    if (!session) throw new Error(`deliverVia: no gateway session ${sessionId}`);
    if (!this.#coversGuild(session, guildId))
      throw new Error(
        `deliverVia: session ${sessionId} is shard ${session.shard.join('/')}, not the guild's`,
      );
    const previous = this.#target;
    this.#target = session;
    try {
      return act();
    } finally {
      this.#target = previous;
    }
  }

  /**
   * Sends an event of guild `guildId` to every session of that guild's shard (that has `intent`, when given), or
   * only to the deliverVia target; `build` may tailor or skip (undefined).
   */
  dispatch(t: string, guildId: string, build: (s: Session) => unknown, intent?: number): void {
    for (const s of this.sessions.values()) {
      if (this.#target !== undefined && s !== this.#target) continue;
      if (!this.#coversGuild(s, guildId)) continue;
      if (intent !== undefined && (s.intents & intent) === 0) continue;
      const d = build(s);
      if (d === undefined) continue;
      this.#sendDispatch(s, t, d);
    }
    this.#store.changed();
  }

  /** Closes the bot's sockets abnormally (as a network failure would); sessions stay resumable. */
  drop(): void {
    for (const s of this.sessions.values()) {
      s.socket?.terminate();
      s.socket = null;
    }
    this.#store.changed();
  }

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #coversGuild(s: Session, guildId: string): boolean {
    return shardOf(guildId, s.shard[1]) === s.shard[0];
  }

  /** The guilds a session's shard covers, in the order they were made. */
  #guildsOf(s: Session): string[] {
    return [...this.#store.guilds.keys()].filter((id) => this.#coversGuild(s, id));
  }

  /** The bot joined a guild (made after it connected): GUILD_CREATE to the guild's shard, as Discord does. */
  guildAdded(guildId: string): void {
    this.dispatch('GUILD_CREATE', guildId, () => this.#store.guildCreateJson(guildId));
  }

  #record(dir: 'in' | 'out', op: number, t?: string, session?: string): void {
    const event: GatewayEvent = { at: Date.now(), dir, op };
    if (t !== undefined) event.t = t;
    if (session !== undefined) event.session = session;
    this.events.push(event);
    if (this.events.length > LOG_LIMIT) this.events.splice(0, this.events.length - LOG_LIMIT);
  }

  #raw(
    ws: WebSocket,
    payload: { op: number; d: unknown; s?: number | null; t?: string | null },
    session?: string,
  ): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ s: null, t: null, ...payload }));
    this.#record('out', payload.op, payload.t ?? undefined, session);
  }

  #sendDispatch(s: Session, t: string, d: unknown): void {
    s.seq++;
    const frame = { op: Op.DISPATCH, s: s.seq, t, d } as const;
    s.log.push(frame);
    if (s.log.length > LOG_LIMIT) s.log.splice(0, s.log.length - LOG_LIMIT);
    if (s.socket) this.#raw(s.socket, frame, s.id);
  }

  #onConnection(ws: WebSocket): void {
    let session: Session | undefined;
    this.#raw(ws, {
      op: Op.HELLO,
      d: { heartbeat_interval: this.heartbeatIntervalMs, _trace: ['emulator'] },
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      if (session && session.socket === ws) {
        session.socket = null;
        // A normal close ends the session (discord.js destroy()); anything else stays resumable.
        if (code === 1000 || code === 1001) this.sessions.delete(session.id);
      }
      this.#store.changed();
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        ws.close(4002, 'Error while decoding payload.');
        return;
      }
      let msg: { op?: unknown; d?: unknown };
      try {
        msg = JSON.parse(data.toString()) as { op?: unknown; d?: unknown };
      } catch {
        ws.close(4002, 'Error while decoding payload.');
        return;
      }
      const op = typeof msg.op === 'number' ? msg.op : -1;
      this.#record('in', op, undefined, session?.id);
      const d = (typeof msg.d === 'object' && msg.d !== null ? msg.d : {}) as Json;
      switch (op) {
        case Op.HEARTBEAT:
          this.#raw(ws, { op: Op.HEARTBEAT_ACK, d: null });
          break;
        case Op.IDENTIFY:
          if (session) {
            ws.close(4005, 'Already authenticated.');
            return;
          }
          session = this.#identify(ws, d);
          break;
        case Op.RESUME:
          session = this.#resume(ws, d);
          break;
        case Op.REQUEST_GUILD_MEMBERS:
          if (!session) ws.close(4003, 'Not authenticated.');
          else this.#requestMembers(session, d);
          break;
        case Op.PRESENCE_UPDATE:
        case 4:
          if (!session) ws.close(4003, 'Not authenticated.');
          break;
        default:
          ws.close(4001, 'Unknown opcode.');
      }
      this.#store.changed();
    });
  }

  #tokenOk(token: unknown): boolean {
    return typeof token === 'string' && token.replace(/^Bot\s+/i, '') === this.#botToken;
  }

  #identify(ws: WebSocket, d: Json): Session | undefined {
    if (!this.#tokenOk(d.token)) {
      ws.close(4004, 'Authentication failed.');
      return undefined;
    }
    if (typeof d.intents !== 'number') {
      ws.close(4013, 'Invalid intent(s).');
      return undefined;
    }
    const shard = parseShard(d.shard);
    if (!shard) {
      ws.close(4010, 'Invalid shard.');
      return undefined;
    }
    if (!this.#admitIdentify(ws, shard)) return undefined;
    const store = this.#store;
    const session: Session = { id: randomToken(16), intents: d.intents, seq: 0, log: [], socket: ws, shard };
    const guildIds = this.#guildsOf(session);
    this.sessions.set(session.id, session);
    this.#sendDispatch(session, 'READY', {
      v: 10,
      user: { ...store.userJson(store.botUserId), verified: true, mfa_enabled: false, email: null },
      user_settings: {},
      guilds: guildIds.map((id) => ({ id, unavailable: true })),
      session_id: session.id,
      session_type: 'normal',
      resume_gateway_url: this.url,
      shard,
      application: { id: store.applicationId, flags: 1 << 19 },
      private_channels: [],
      relationships: [],
      presences: [],
      guild_join_requests: [],
      geo_ordered_rtc_regions: [],
      auth: {},
      _trace: ['emulator'],
    });
    for (const id of guildIds) this.#sendDispatch(session, 'GUILD_CREATE', store.guildCreateJson(id));
    return session;
  }

  #resume(ws: WebSocket, d: Json): Session | undefined {
    const session = typeof d.session_id === 'string' ? this.sessions.get(d.session_id) : undefined;
    if (!this.#tokenOk(d.token) || !session) {
      this.#raw(ws, { op: Op.INVALID_SESSION, d: false });
      return undefined;
    }
    if (session.socket && session.socket !== ws) session.socket.terminate();
    session.socket = ws;
    const from = typeof d.seq === 'number' ? d.seq : 0;
    for (const frame of session.log) if (frame.s > from) this.#raw(ws, frame, session.id);
    this.#sendDispatch(session, 'RESUMED', { _trace: ['emulator'] });
    return session;
  }

  #requestMembers(session: Session, d: Json): void {
    const store = this.#store;
    // discord.js asks one guild at a time; an unknown guild gets nothing back.
    const guild = store.guilds.get(String(d.guild_id));
    if (!guild) return;
    const ids = Array.isArray(d.user_ids)
      ? d.user_ids.map(String)
      : typeof d.user_ids === 'string'
        ? [d.user_ids]
        : null;
    const query = typeof d.query === 'string' ? d.query.toLowerCase() : '';
    const limit = typeof d.limit === 'number' && d.limit > 0 ? d.limit : Number.POSITIVE_INFINITY;
    const members: Json[] = [];
    const notFound: string[] = [];
    if (ids) {
      for (const id of ids) {
        const m = store.memberJson(id, true, guild.id);
        if (m) members.push(m);
        else notFound.push(id);
      }
    } else {
      for (const id of guild.members.keys()) {
        if (members.length >= limit) break;
        const u = store.users.get(id);
        if (u?.username.toLowerCase().startsWith(query)) {
          const m = store.memberJson(id, true, guild.id);
          if (m) members.push(m);
        }
      }
    }
    this.#sendDispatch(session, 'GUILD_MEMBERS_CHUNK', {
      guild_id: guild.id,
      members,
      chunk_index: 0,
      chunk_count: 1,
      not_found: notFound,
      ...(d.nonce !== undefined ? { nonce: d.nonce } : {}),
    });
  }
}

/** IDENTIFY's `shard`: absent means [0, 1]; otherwise two whole numbers with 0 <= id < count. */
function parseShard(value: unknown): [number, number] | undefined {
  if (value === undefined || value === null) return [0, 1];
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [id, count] = value as unknown[];
  if (!Number.isInteger(id) || !Number.isInteger(count)) return undefined;
  const [i, n] = [id as number, count as number];
  return n >= 1 && i >= 0 && i < n ? [i, n] : undefined;
}
