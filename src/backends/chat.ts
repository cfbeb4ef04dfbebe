import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { hasAttachments, withoutAttachments } from '../core/attachments.ts';
import { estimateTokens, itemTokens, summaryMessage, summaryRequest } from '../core/context.ts';
import { UpstreamError } from '../core/errors.ts';
import type { Condensed, Item } from '../core/model.ts';
import type {
  Generated,
  GenerationOptions,
  HistoryView,
  ModelBackend,
  Usage,
  Variant,
} from '../core/ports.ts';
import { readTail } from './history.ts';
import { isContextTooLong, toUpstreamError } from './openai-errors.ts';
import { type Attached, type AttachmentOptions, attach, chatContent } from './parts.ts';

export { estimateTokens };

/** Prompt budget when none is configured: small enough for the usual local model servers. */
export const DEFAULT_CHAT_CONTEXT_TOKENS = 8192;

/** Splits a history into turns: each starts at a user item that follows an assistant item (or at the start). */
function turnsOf(history: readonly Item[]): Item[][] {
  const turns: Item[][] = [];
  for (const [i, item] of history.entries()) {
    const previous = history[i - 1];
    const last = turns.at(-1);
    if (!last || (item.role === 'user' && previous?.role === 'assistant')) turns.push([item]);
    else last.push(item);
  }
  return turns;
}

/**
 * The messages of one request: the system message (the instructions), then as much of the history as fits
 * `contextTokens` (whole turns, dropping the oldest first), then the input. The system message and the input are
 * never dropped (nor, when there is no input, the last turn of the history: it is what is being answered); if they
 * alone do not fit, they are sent anyway, and the server's refusal tells the person the message is too long.
 */
export function chatMessages(
  history: readonly Item[],
  input: readonly Item[],
  instructions: string | undefined,
  contextTokens: number,
  condensed?: Condensed,
): ChatCompletionMessageParam[] {
  return chatRequest(history, input, instructions, contextTokens, undefined, condensed).messages;
}

/** A request's messages, and what the server's "too long" then means. */
interface ChatRequest {
  messages: ChatCompletionMessageParam[];
  /** The estimated share of the prompt that cannot be dropped (system message and what is answered), 0 to 1. */
  fixedShare: number;
  /** Earlier turns sent besides it. */
  earlierTurns: number;
}

function chatRequest(
  history: readonly Item[],
  input: readonly Item[],
  instructions: string | undefined,
  contextTokens: number,
  attached?: Attached,
  condensed?: Condensed,
): ChatRequest {
  const turns = turnsOf(history);
  const kept = input.length > 0 ? [...input] : (turns.pop() ?? []);
  // The summary of the oldest part is never trimmed: it is what the thread remembers of it.
  const summary = condensed ? summaryMessage(condensed) : undefined;
  const fixed =
    (instructions ? estimateTokens(instructions) : 0) +
    (summary ? estimateTokens(summary) : 0) +
    kept.reduce((sum, item) => sum + itemTokens(item), 0);
  let budget = contextTokens - fixed;
  let first = turns.length;
  for (; first > 0; first--) {
    const cost = turns[first - 1]!.reduce((sum, item) => sum + itemTokens(item), 0);
    if (cost > budget) break;
    budget -= cost;
  }
  const earlier = turns.slice(first).flat();
  const total = earlier.reduce((sum, item) => sum + itemTokens(item), fixed);
  return {
    messages: [
      ...(instructions ? [{ role: 'system' as const, content: instructions }] : []),
      ...(summary ? [{ role: 'system' as const, content: summary }] : []),
      ...[...earlier, ...kept].map(
        (item): ChatCompletionMessageParam =>
          item.role === 'user'
            ? { role: 'user', content: chatContent(item, attached) }
            : { role: 'assistant', content: item.text },
      ),
    ],
    fixedShare: total > 0 ? fixed / total : 1,
    earlierTurns: turns.length - first,
  };
}

/** True for the core's error for a model that takes no images or files. */
function refusedAttachments(error: unknown): boolean {
  return error instanceof UpstreamError && error.failure === 'attachments_unsupported';
}

/**
 * The error for a prompt the server found too long, when it is the message itself (not the thread's history) that
 * does not fit: then the thread is not stuck, and the person must hear that the message was too long. It is the
 * message when no earlier turn was sent, or when its share of the prompt alone exceeds the context the server names
 * (llama.cpp says `n_prompt_tokens` and `n_ctx`).
 */
function messageTooLong(error: unknown, request: ChatRequest): UpstreamError | undefined {
  if (!isContextTooLong(error)) return undefined;
  const body = (error as InstanceType<typeof OpenAI.APIError>).error as
    | { n_prompt_tokens?: unknown; n_ctx?: unknown }
    | undefined;
  const sent = typeof body?.n_prompt_tokens === 'number' ? body.n_prompt_tokens : undefined;
  const context = typeof body?.n_ctx === 'number' ? body.n_ctx : undefined;
  const alone =
    request.earlierTurns === 0 ||
    (sent !== undefined && context !== undefined && sent * request.fixedShare >= context);
  if (!alone) return undefined;
  const sizes =
    sent !== undefined && context !== undefined
      ? ` (${sent} tokens were sent; it reads at most ${context})`
      : '';
  return new UpstreamError(
    'context_too_long',
    `This message is longer than the model can read${sizes}. Send a shorter one.`,
    { retryable: false, cause: error },
  );
}

/**
 * The largest `n` a server says it takes, when `error` is its refusal of the `n` asked for; undefined for any other
 * error. llama.cpp answers 400 "Field 'n': Value must be between 1 <= value <= 2, but got 3" (its slot count), older
 * versions "Only one completion choice is allowed"; a refusal that names no limit means 1.
 */
function allowedChoices(error: unknown): number | undefined {
  if (!(error instanceof OpenAI.APIError) || (error.status !== 400 && error.status !== 422)) return undefined;
  const message = error.message;
  if (
    error.param !== 'n' &&
    !/field 'n'|only one completion choice|multiple (completion )?choices|\bn\b/i.test(message)
  )
    return undefined;
  const most = Number(message.match(/<=\s*value\s*<=\s*(\d+)/i)?.[1] ?? 1);
  return Number.isInteger(most) && most >= 1 ? most : 1;
}

function isAbort(error: unknown): boolean {
  return error instanceof OpenAI.APIUserAbortError || (error as Error | undefined)?.name === 'AbortError';
}

/** Where one choice of a request goes. */
interface Sink {
  signal: AbortSignal;
  onDelta(text: string): void;
}

/** What a usage chunk counts. */
interface ServerUsage {
  prompt: number;
  completion: number;
  /** Of the prompt, what the server served from its prompt cache. */
  cachedPrompt: number;
}

interface ChoiceState {
  sink: Sink;
  /** What was delivered (up to a stop). */
  text: string;
  refusal: string;
  /** Characters the server generated for this choice, delivered or not (for the usage split). */
  generated: number;
  /** A chunk of this choice arrived. */
  seen: boolean;
  stopped: boolean;
  /** The usage chunk that came right after this choice ended (servers that count each choice apart). */
  usage: ServerUsage | undefined;
}

interface StreamOutcome {
  choices: ChoiceState[];
  /** Every usage chunk of the stream, in order. */
  usage: ServerUsage[];
  /** Why the request failed; a stop is not a failure. */
  error: unknown;
}

/** Splits `total` in proportion to `weights` (all equal when they are all 0); the shares add up to `total`. */
function proportional(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (sum > 0 ? (w / sum) * total : total / weights.length));
  const shares = exact.map(Math.floor);
  // Largest remainders get the tokens lost to rounding.
  let left = total - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, rest: x - shares[i]! })).sort((a, b) => b.rest - a.rest);
  for (const { i } of order) {
    if (left <= 0) break;
    shares[i]! += 1;
    left -= 1;
  }
  return shares;
}

/**
 * Splits a request's usage over its choices. The prompt was paid once: it is reported on the first choice and as 0
 * on the others. OpenAI sends one usage chunk for the whole request, whose completion tokens are split in proportion
 * to the characters each choice generated (exact for one choice, an estimate for several). llama.cpp sends one usage
 * chunk per choice, right after that choice's last chunk and counting that choice alone: each choice gets its own.
 */
function splitUsage(outcome: StreamOutcome): Usage[] {
  const { choices, usage } = outcome;
  if (usage.length === 0) return choices.map(() => ({ inputTokens: 0, outputTokens: 0 }));
  const prompt = Math.max(...usage.map((u) => u.prompt));
  const cachedPrompt = Math.max(...usage.map((u) => u.cachedPrompt));
  const perChoice = usage.length > 1;
  // What no choice claims (all of it, for one chunk for the whole request) is shared by the choices without their own.
  const unclaimed = usage
    .filter((u) => !perChoice || !choices.some((c) => c.usage === u))
    .reduce((sum, u) => sum + u.completion, 0);
  const sharing = choices.filter((c) => !perChoice || !c.usage);
  const shares = proportional(
    unclaimed,
    sharing.map((c) => c.generated),
  );
  return choices.map((choice, i) => ({
    inputTokens: i === 0 ? prompt : 0,
    ...(i === 0 && cachedPrompt > 0 ? { cachedInputTokens: cachedPrompt } : {}),
    outputTokens:
      perChoice && choice.usage ? choice.usage.completion : (shares[sharing.indexOf(choice)] ?? 0),
  }));
}

/**
 * The backend for any server that speaks Chat Completions (OpenAI, Ollama, vLLM, llama.cpp, LM Studio). The bot keeps
 * the history itself and sends it with every request, trimmed to `contextTokens` (see `chatMessages`); there is no
 * provider state. Alternatives that share model, instructions and temperature are one request with `n` (the prompt
 * is paid once). A server that takes fewer choices per request says so (llama.cpp: at most its slot count) and gets
 * requests of at most that many, at once; one that refuses `n > 1`, or ignores it and answers one choice, gets
 * parallel single requests. Either is remembered for that model.
 */
export function createChatBackend(
  client: OpenAI,
  options: {
    /** The prompt budget: a model's context window (the same table the core condenses by), or one number for all. */
    contextTokens: number | ((model: string) => number);
    attachments?: AttachmentOptions;
  },
): ModelBackend {
  const budgetOf = (model: string) =>
    typeof options.contextTokens === 'number' ? options.contextTokens : options.contextTokens(model);
  /** The most choices a model's server answers in one request, learnt from a refusal or an ignored `n`. */
  const choiceLimits = new Map<string, number>();

  /** Streams one request with `sinks.length` choices; each sink's signal stops only its own choice. */
  async function stream(
    messages: ChatCompletionMessageParam[],
    generation: GenerationOptions,
    sinks: readonly Sink[],
  ): Promise<StreamOutcome> {
    const choices: ChoiceState[] = sinks.map((sink) => ({
      sink,
      text: '',
      refusal: '',
      generated: 0,
      seen: false,
      stopped: sink.signal.aborted,
      usage: undefined,
    }));
    const outcome: StreamOutcome = { choices, usage: [], error: undefined };
    // The request itself stops when no choice is wanted any more.
    const request = new AbortController();
    const onAbort = () => {
      for (const choice of choices) if (choice.sink.signal.aborted) choice.stopped = true;
      if (choices.every((c) => c.stopped)) request.abort();
    };
    for (const sink of sinks) sink.signal.addEventListener('abort', onAbort, { once: true });
    onAbort();
    try {
      const response = await client.chat.completions.create(
        {
          model: generation.model,
          messages,
          ...(generation.temperature !== undefined ? { temperature: generation.temperature } : {}),
          ...(generation.cacheKey ? { prompt_cache_key: generation.cacheKey } : {}),
          ...(sinks.length > 1 ? { n: sinks.length } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: request.signal },
      );
      /** The choice that ended last, until a usage chunk follows it. */
      let ended: ChoiceState | undefined;
      for await (const chunk of response) {
        for (const part of chunk.choices ?? []) {
          const choice = choices[part.index];
          if (!choice) continue;
          choice.seen = true;
          if (part.finish_reason) ended = choice;
          const content = part.delta?.content ?? '';
          const refusal = part.delta?.refusal ?? '';
          choice.generated += content.length + refusal.length;
          if (choice.stopped) continue;
          choice.refusal += refusal;
          if (content) {
            choice.text += content;
            choice.sink.onDelta(content);
          }
        }
        if (chunk.usage) {
          const usage = {
            prompt: chunk.usage.prompt_tokens,
            cachedPrompt: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
            completion: chunk.usage.completion_tokens,
          };
          outcome.usage.push(usage);
          if (ended && !ended.usage) ended.usage = usage;
          ended = undefined;
        }
      }
    } catch (error) {
      if (!(request.signal.aborted && isAbort(error))) outcome.error = error;
    } finally {
      for (const sink of sinks) sink.signal.removeEventListener('abort', onAbort);
      onAbort();
    }
    return outcome;
  }

  /** The result of each choice of an outcome; `undefined` for a choice that did not end (failed, or never came). */
  function results(outcome: StreamOutcome): (Generated | undefined)[] {
    const usage = splitUsage(outcome);
    return outcome.choices.map((choice, i): Generated | undefined => {
      const base = { usage: usage[i]!, responseId: undefined };
      if (choice.stopped) return { ...base, text: choice.text, stopped: true, refused: false };
      if (outcome.error !== undefined || !choice.seen) return undefined;
      if (choice.refusal && !choice.text)
        return { ...base, text: choice.refusal, stopped: false, refused: true };
      return { ...base, text: choice.text, stopped: false, refused: false };
    });
  }

  /** The core's error for a request's failure. */
  function failure(error: unknown, request: ChatRequest, generation: GenerationOptions): UpstreamError {
    return messageTooLong(error, request) ?? toUpstreamError(error, generation.model);
  }

  async function single(request: ChatRequest, generation: GenerationOptions, sink: Sink) {
    const outcome = await stream(request.messages, generation, [sink]);
    const [result] = results(outcome);
    if (result) return result;
    if (outcome.error !== undefined) throw failure(outcome.error, request, generation);
    // The stream ended without a word of this choice: an empty reply.
    return {
      text: '',
      usage: splitUsage(outcome)[0]!,
      responseId: undefined,
      stopped: false,
      refused: false,
    };
  }

  /**
   * Variants that share their generation options: one request with `n` when the server takes it, several requests
   * of at most the server's limit when it takes fewer (they run at once; the server queues what its slots cannot
   * run yet).
   */
  async function group(
    request: ChatRequest,
    generation: GenerationOptions,
    variants: readonly Variant[],
  ): Promise<PromiseSettledResult<Generated>[]> {
    const singles = (list: readonly Variant[]) =>
      Promise.allSettled(list.map((variant) => single(request, generation, variant)));
    const limit = choiceLimits.get(generation.model) ?? variants.length;
    if (variants.length > limit && limit > 1) {
      const batches: Variant[][] = [];
      for (let at = 0; at < variants.length; at += limit) batches.push(variants.slice(at, at + limit));
      return (await Promise.all(batches.map((batch) => group(request, generation, batch)))).flat();
    }
    if (variants.length === 1 || limit <= 1) return singles(variants);
    const outcome = await stream(request.messages, generation, variants);
    const allowed = outcome.error === undefined ? undefined : allowedChoices(outcome.error);
    if (allowed !== undefined) {
      // Below what was asked, so that this ends: at 1, every variant is a request of its own.
      learnLimit(generation.model, Math.min(allowed, variants.length - 1));
      return group(request, generation, variants);
    }
    const done = results(outcome);
    let missing: Variant[] = [];
    if (outcome.error === undefined && outcome.choices[0]?.seen) {
      // A server that ignores `n` answers only choice 0: ask again for the others, one request each.
      missing = variants.filter((_, i) => done[i] === undefined);
      if (missing.length > 0) learnLimit(generation.model, 1);
    }
    const retried = await singles(missing);
    return variants.map((variant, i): PromiseSettledResult<Generated> => {
      const result = done[i];
      if (result) return { status: 'fulfilled', value: result };
      const again = retried[missing.indexOf(variant)];
      if (again) return again;
      const reason =
        outcome.error !== undefined
          ? failure(outcome.error, request, generation)
          : toUpstreamError(new Error('The server answered without this choice.'), generation.model);
      return { status: 'rejected', reason };
    });
  }

  /** As much of the history as could fit the prompt budget (the oldest turns are trimmed from it after). */
  const recent = (history: HistoryView, budget: number) =>
    readTail(history, (tail) => tail.reduce((chars, item) => chars + item.text.length, 0) > budget * 8);

  function learnLimit(model: string, most: number): void {
    choiceLimits.set(model, Math.min(choiceLimits.get(model) ?? most, most));
  }

  const keyOf = (o: GenerationOptions) =>
    JSON.stringify([o.model, o.instructions ?? null, o.temperature ?? null]);

  return {
    kind: 'chat',
    serverCompaction: false,

    // Any server: the model itself writes the summary (what it folded in is text it can read; a compaction from
    // another backend is opaque to it and is left out).
    async condense({ previous, items, options: generation, maxTokens, signal }) {
      const ask = summaryRequest(previous, items, maxTokens);
      try {
        const response = await client.chat.completions.create(
          {
            model: generation.model,
            messages: [
              { role: 'system', content: ask.instructions },
              { role: 'user', content: ask.text },
            ],
            max_tokens: maxTokens,
            stream: false,
          },
          { signal },
        );
        return {
          kind: 'summary',
          text: response.choices[0]?.message.content?.trim() ?? '',
          usage: {
            inputTokens: response.usage?.prompt_tokens ?? 0,
            outputTokens: response.usage?.completion_tokens ?? 0,
          },
        };
      } catch (error) {
        throw toUpstreamError(error, generation.model);
      }
    },

    async runTurn({ history, input, options: generation, signal, onDelta }) {
      const budget = budgetOf(generation.model);
      const past = await recent(history, budget);
      const attached = await attach([...past, ...input], options.attachments, 'auto');
      const request = chatRequest(past, input, generation.instructions, budget, attached, history.condensed);
      try {
        const result = await single(request, generation, { signal, onDelta });
        return { ...result, provider: undefined };
      } catch (error) {
        // A server without vision: answer the text alone (a refusal comes before any text was streamed).
        if (!refusedAttachments(error) || !hasAttachments([...past, ...input])) throw error;
        const textOnly = chatRequest(
          withoutAttachments(past),
          withoutAttachments(input),
          generation.instructions,
          budget,
          undefined,
          history.condensed,
        );
        const result = await single(textOnly, generation, { signal, onDelta });
        return { ...result, attachmentsDropped: true, provider: undefined };
      }
    },

    async generateAlternatives({ history, input, variants }) {
      const groups = new Map<string, number[]>();
      for (const [i, variant] of variants.entries()) {
        const key = keyOf(variant.options);
        groups.set(key, [...(groups.get(key) ?? []), i]);
      }
      const settled: PromiseSettledResult<Generated>[] = new Array(variants.length);
      const recentHistory = await recent(
        history,
        Math.max(...variants.map((v) => budgetOf(v.options.model))),
      );
      const attached = await attach(
        [...recentHistory, ...input],
        options.attachments,
        options.attachments?.forkImageDetail ?? 'low',
      );
      await Promise.all(
        [...groups.values()].map(async (indices) => {
          const generation = variants[indices[0]!]!.options;
          const request = chatRequest(
            recentHistory,
            input,
            generation.instructions,
            budgetOf(generation.model),
            attached,
            history.condensed,
          );
          const out = await group(
            request,
            generation,
            indices.map((i) => variants[i]!),
          );
          for (const [j, i] of indices.entries()) settled[i] = out[j]!;
          // A server without vision: the refused alternatives answer the text alone.
          const refused = indices.filter((_, j) => {
            const result = out[j]!;
            return result.status === 'rejected' && refusedAttachments(result.reason);
          });
          if (refused.length === 0 || !hasAttachments([...recentHistory, ...input])) return;
          const textOnly = chatRequest(
            withoutAttachments(recentHistory),
            withoutAttachments(input),
            generation.instructions,
            budgetOf(generation.model),
            undefined,
            history.condensed,
          );
          const again = await group(
            textOnly,
            generation,
            refused.map((i) => variants[i]!),
          );
          for (const [j, i] of refused.entries()) {
            const result = again[j]!;
            settled[i] =
              result.status === 'fulfilled'
                ? { status: 'fulfilled', value: { ...result.value, attachmentsDropped: true } }
                : result;
          }
        }),
      );
      return settled;
    },

    // Nothing is kept at the server: the bot's own record is the history.
    async transfer() {
      return undefined;
    },

    async release() {},
  };
}
