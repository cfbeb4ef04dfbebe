/** Hand-written fakes of the core's ports that record what they were asked. */

import { contextItems } from '../src/core/context.ts';
import { createKeyedMutex } from '../src/core/keyed-mutex.ts';
import type { Item, ProviderState, ThreadSettings, Vote } from '../src/core/model.ts';
import type {
  Clock,
  Generated,
  GenerationOptions,
  Logger,
  ModelBackend,
  Notice,
  ReplyOutcome,
  Store,
  ThreadPresenter,
} from '../src/core/ports.ts';

export function createMemoryStore(): Store & { data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  const mutex = createKeyedMutex();
  const clone = <T>(value: T): T => (value === undefined ? value : structuredClone(value));
  return {
    data,
    get: async (key) => clone(data.get(key)) as never,
    set: async (key, value) => void data.set(key, clone(value)),
    delete: async (key) => void data.delete(key),
    update: (key, change) =>
      mutex.run(key, async () => {
        const next = change(clone(data.get(key)) as never);
        if (next === undefined) data.delete(key);
        else data.set(key, clone(next));
        return clone(next);
      }),
    close: async () => {},
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function createManualClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  const timers = new Set<{ at: number; callback: () => void }>();
  return {
    now: () => now,
    setTimer(callback, ms) {
      const timer = { at: now + ms, callback };
      timers.add(timer);
      return { cancel: () => void timers.delete(timer) };
    },
    advance(ms) {
      now += ms;
      for (const timer of [...timers].sort((a, b) => a.at - b.at)) {
        if (timer.at <= now) {
          timers.delete(timer);
          timer.callback();
        }
      }
    },
  };
}

export interface BackendCall {
  method: 'runTurn' | 'generateAlternatives' | 'transfer' | 'release' | 'condense';
  history?: Item[];
  /** The condensed form sent before `history` (its summary's text). */
  summary?: string;
  input?: Item[];
  options?: GenerationOptions[];
  provider?: ProviderState | undefined;
}

/** Replies "reply to <last input> after <n> items [style]"; `fail` makes chosen calls throw. */
export function createFakeBackend(): ModelBackend & {
  calls: BackendCall[];
  failNext: Error[];
  conversations: Map<string, Item[]>;
} {
  const calls: BackendCall[] = [];
  const failNext: Error[] = [];
  const conversations = new Map<string, Item[]>();
  let next = 1;
  const reply = (
    history: readonly Item[],
    input: readonly Item[],
    options: GenerationOptions,
  ): Generated => ({
    text: `reply to "${input.at(-1)?.text}" after ${history.length} items${options.instructions ? ` [${options.instructions}]` : ''}`,
    usage: { inputTokens: history.length + 1, outputTokens: 5 },
    responseId: undefined,
    stopped: false,
    refused: false,
  });
  return {
    kind: 'conversations',
    serverCompaction: false,
    calls,
    failNext,
    conversations,
    async condense({ previous, items, options }) {
      calls.push({
        method: 'condense',
        history: [...items],
        options: [options],
        ...(previous ? { summary: previous.text } : {}),
      });
      const error = failNext.shift();
      if (error) throw error;
      const text = `${previous?.text ? `${previous.text} + ` : ''}${items.length} items up to "${items.at(-1)?.text}"`;
      return { kind: 'summary', text, usage: { inputTokens: items.length, outputTokens: 3 } };
    },
    async runTurn({ provider: given, history: view, input, options, onDelta, resumed }) {
      // As the conversations backend does, a resumed turn starts a new conversation from the recorded history.
      const provider = resumed ? undefined : given;
      const { condensed, items } = await contextItems(view);
      const history = provider?.conversationId ? [] : items;
      calls.push({
        method: 'runTurn',
        history: [...history],
        input: [...input],
        options: [options],
        provider,
        ...(condensed && !provider?.conversationId ? { summary: condensed.text } : {}),
      });
      const error = failNext.shift();
      if (error) throw error;
      const id = provider?.conversationId ?? `conv_${next++}`;
      const held = conversations.get(id) ?? history;
      const generated = reply(held, input, options);
      onDelta(generated.text);
      conversations.set(id, [...held, ...input, { id: 'r', role: 'assistant', text: generated.text }]);
      return { ...generated, provider: { conversationId: id } };
    },
    async generateAlternatives({ history: view, input, variants }) {
      const { condensed, items: history } = await contextItems(view);
      calls.push({
        method: 'generateAlternatives',
        ...(condensed ? { summary: condensed.text } : {}),
        history: [...history],
        input: [...input],
        options: variants.map((v) => v.options),
      });
      return Promise.allSettled(
        variants.map(async (variant) => {
          const error = failNext.shift();
          if (error) throw error;
          const generated = reply(history, input, variant.options);
          variant.onDelta(generated.text);
          return generated;
        }),
      );
    },
    async transfer({ provider, from, to, sharedPrefix }) {
      const added = await to.read(sharedPrefix);
      calls.push({ method: 'transfer', provider, input: added });
      const held = conversations.get(provider.conversationId!) ?? (await from.read());
      conversations.set(provider.conversationId!, [...held.slice(0, sharedPrefix), ...added]);
      return provider;
    },
    async release(provider) {
      calls.push({ method: 'release', provider });
    },
  };
}

export interface ShownReply {
  threadId: string;
  header: string | undefined;
  updates: string[];
  outcome: ReplyOutcome | undefined;
}

export function createRecordingPresenter(): ThreadPresenter & {
  replies: ShownReply[];
  notices: Notice[];
  ballots: Vote[];
} {
  const replies: ShownReply[] = [];
  const notices: Notice[] = [];
  const ballots: Vote[] = [];
  return {
    replies,
    notices,
    ballots,
    async startReply(threadId, { alternative }) {
      const shown: ShownReply = { threadId, header: alternative?.letter, updates: [], outcome: undefined };
      replies.push(shown);
      return {
        update: (text) => void shown.updates.push(text),
        finish: async (outcome) => {
          shown.outcome = outcome;
        },
      };
    },
    async startAlternatives(threadId, { vote, turns }) {
      return {
        ballotMessageId: `ballot-${vote.id}`,
        replies: turns.map(({ letter }) => {
          const shown: ShownReply = { threadId, header: letter, updates: [], outcome: undefined };
          replies.push(shown);
          return {
            update: (text: string) => void shown.updates.push(text),
            finish: async (outcome: ReplyOutcome) => {
              shown.outcome = outcome;
            },
          };
        }),
      };
    },
    async notice(_threadId, notice) {
      notices.push(notice);
    },
    async showBallot(_threadId, vote) {
      ballots.push(vote);
      return `ballot-${vote.id}`;
    },
    async updateBallot(_threadId, load) {
      const vote = (await load())?.vote;
      if (vote) ballots.push(vote);
    },
  };
}

/** A thread's settings as the core tests start them: model "m", quorum 1, nothing automatic. */
export const TEST_SETTINGS: ThreadSettings = {
  model: 'm',
  instructions: undefined,
  alternativesCount: 2,
  autoAlternatives: 0,
  alternativesEnabled: true,
  quorum: 1,
  voteMs: 60_000,
  gatherMessages: false,
  blind: false,
};
