import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { Item } from '../core/model.ts';
import type { Generated, GenerationOptions, ModelBackend, Usage, Variant } from '../core/ports.ts';
import { toUpstreamError } from './openai-errors.ts';

/** Prompt budget when none is configured: small enough for the usual local model servers. */
export const DEFAULT_CHAT_CONTEXT_TOKENS = 8192;

/** Tokens a message costs besides its text (role and separators), in the estimate. */
const MESSAGE_OVERHEAD_TOKENS = 4;

/**
 * A rough token count of one message: a token is about 4 characters of English text, plus a few for the message's
 * framing. No tokenizer of the served model is at hand, so this only has to be in the right range; the budget
 * should leave room for the reply and for the estimate's error.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + MESSAGE_OVERHEAD_TOKENS;
}

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
 * alone do not fit, they are sent anyway and the server says the thread is too long.
 */
export function chatMessages(
  history: readonly Item[],
  input: readonly Item[],
  instructions: string | undefined,
  contextTokens: number,
): ChatCompletionMessageParam[] {
  const turns = turnsOf(history);
  const kept = input.length > 0 ? [...input] : (turns.pop() ?? []);
  let budget = contextTokens - (instructions ? estimateTokens(instructions) : 0);
  for (const item of kept) budget -= estimateTokens(item.text);
  let first = turns.length;
  for (; first > 0; first--) {
    const cost = turns[first - 1]!.reduce((sum, item) => sum + estimateTokens(item.text), 0);
    if (cost > budget) break;
    budget -= cost;
  }
  const items = [...turns.slice(first).flat(), ...kept];
  return [
    ...(instructions ? [{ role: 'system' as const, content: instructions }] : []),
    ...items.map((item) => ({ role: item.role, content: item.text })),
  ];
}

/** True when a server refuses `n > 1` (llama.cpp: 400 "Only one completion choice is allowed"). */
function refusesMultipleChoices(error: unknown): boolean {
  return (
    error instanceof OpenAI.APIError &&
    (error.status === 400 || error.status === 422) &&
    (error.param === 'n' ||
      /only one completion choice|multiple (completion )?choices|\bn\b/i.test(error.message))
  );
}

function isAbort(error: unknown): boolean {
  return error instanceof OpenAI.APIUserAbortError || (error as Error | undefined)?.name === 'AbortError';
}

/** Where one choice of a request goes. */
interface Sink {
  signal: AbortSignal;
  onDelta(text: string): void;
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
}

interface StreamOutcome {
  choices: ChoiceState[];
  usage: { prompt: number; cachedPrompt: number; completion: number } | undefined;
  /** Why the request failed; a stop is not a failure. */
  error: unknown;
}

/**
 * Splits a request's usage over its choices. The prompt was paid once: it is reported on the first choice and as 0
 * on the others. Servers report only the total of completion tokens, so it is split in proportion to the characters
 * each choice generated (exact for one choice, an estimate for several; the sum is the server's total).
 */
function splitUsage(outcome: StreamOutcome): Usage[] {
  const { choices, usage } = outcome;
  if (!usage) return choices.map(() => ({ inputTokens: 0, outputTokens: 0 }));
  const totalChars = choices.reduce((sum, c) => sum + c.generated, 0);
  const weights = choices.map((c, i) => (totalChars > 0 ? c.generated / totalChars : i === 0 ? 1 : 0));
  const shares = weights.map((w) => Math.floor(w * usage.completion));
  // Largest remainders get the tokens lost to rounding, so the shares add up to the total.
  let left = usage.completion - shares.reduce((a, b) => a + b, 0);
  const order = weights
    .map((w, i) => ({ i, rest: w * usage.completion - shares[i]! }))
    .sort((a, b) => b.rest - a.rest);
  for (const { i } of order) {
    if (left <= 0) break;
    shares[i]! += 1;
    left -= 1;
  }
  return choices.map((_, i) => ({
    inputTokens: i === 0 ? usage.prompt : 0,
    outputTokens: shares[i]!,
    ...(i === 0 && usage.cachedPrompt > 0 ? { cachedInputTokens: usage.cachedPrompt } : {}),
  }));
}

/**
 * The backend for any server that speaks Chat Completions (OpenAI, Ollama, vLLM, llama.cpp, LM Studio). The bot keeps
 * the history itself and sends it with every request, trimmed to `contextTokens` (see `chatMessages`); there is no
 * provider state. Alternatives that share model, instructions and temperature are one request with `n` (the prompt
 * is paid once); a server that refuses `n > 1`, or ignores it and answers one choice, gets parallel single requests
 * instead, for that model from then on.
 */
export function createChatBackend(client: OpenAI, options: { contextTokens: number }): ModelBackend {
  /** Models whose server answers one choice per request, learnt from a refusal or an ignored `n`. */
  const singleChoiceModels = new Set<string>();

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
    }));
    const outcome: StreamOutcome = { choices, usage: undefined, error: undefined };
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
          ...(sinks.length > 1 ? { n: sinks.length } : {}),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: request.signal },
      );
      for await (const chunk of response) {
        if (chunk.usage) {
          outcome.usage = {
            prompt: chunk.usage.prompt_tokens,
            cachedPrompt: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
            completion: chunk.usage.completion_tokens,
          };
        }
        for (const part of chunk.choices ?? []) {
          const choice = choices[part.index];
          if (!choice) continue;
          choice.seen = true;
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

  async function single(messages: ChatCompletionMessageParam[], generation: GenerationOptions, sink: Sink) {
    const outcome = await stream(messages, generation, [sink]);
    const [result] = results(outcome);
    if (result) return result;
    if (outcome.error !== undefined) throw toUpstreamError(outcome.error, generation.model);
    // The stream ended without a word of this choice: an empty reply.
    return {
      text: '',
      usage: splitUsage(outcome)[0]!,
      responseId: undefined,
      stopped: false,
      refused: false,
    };
  }

  /** Variants that share their generation options: one request with `n` when the server takes it. */
  async function group(
    messages: ChatCompletionMessageParam[],
    generation: GenerationOptions,
    variants: readonly Variant[],
  ): Promise<PromiseSettledResult<Generated>[]> {
    const singles = (list: readonly Variant[]) =>
      Promise.allSettled(list.map((variant) => single(messages, generation, variant)));
    if (variants.length === 1 || singleChoiceModels.has(generation.model)) return singles(variants);
    const outcome = await stream(messages, generation, variants);
    if (outcome.error !== undefined && refusesMultipleChoices(outcome.error)) {
      singleChoiceModels.add(generation.model);
      return singles(variants);
    }
    const done = results(outcome);
    let missing: Variant[] = [];
    if (outcome.error === undefined && outcome.choices[0]?.seen) {
      // A server that ignores `n` answers only choice 0: ask again for the others, one request each.
      missing = variants.filter((_, i) => done[i] === undefined);
      if (missing.length > 0) singleChoiceModels.add(generation.model);
    }
    const retried = await singles(missing);
    return variants.map((variant, i): PromiseSettledResult<Generated> => {
      const result = done[i];
      if (result) return { status: 'fulfilled', value: result };
      const again = retried[missing.indexOf(variant)];
      if (again) return again;
      const reason =
        outcome.error !== undefined
          ? toUpstreamError(outcome.error, generation.model)
          : toUpstreamError(new Error('The server answered without this choice.'), generation.model);
      return { status: 'rejected', reason };
    });
  }

  const keyOf = (o: GenerationOptions) =>
    JSON.stringify([o.model, o.instructions ?? null, o.temperature ?? null]);

  return {
    kind: 'chat',

    async runTurn({ history, input, options: generation, signal, onDelta }) {
      const messages = chatMessages(history, input, generation.instructions, options.contextTokens);
      const result = await single(messages, generation, { signal, onDelta });
      return { ...result, provider: undefined };
    },

    async generateAlternatives({ history, input, variants }) {
      const groups = new Map<string, number[]>();
      for (const [i, variant] of variants.entries()) {
        const key = keyOf(variant.options);
        groups.set(key, [...(groups.get(key) ?? []), i]);
      }
      const settled: PromiseSettledResult<Generated>[] = new Array(variants.length);
      await Promise.all(
        [...groups.values()].map(async (indices) => {
          const generation = variants[indices[0]!]!.options;
          const messages = chatMessages(history, input, generation.instructions, options.contextTokens);
          const out = await group(
            messages,
            generation,
            indices.map((i) => variants[i]!),
          );
          for (const [j, i] of indices.entries()) settled[i] = out[j]!;
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
