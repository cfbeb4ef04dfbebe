import OpenAI from 'openai';
import { hasAttachments, withoutAttachments } from '../core/attachments.ts';
import { contextItems } from '../core/context.ts';
import type { Item } from '../core/model.ts';
import type { Generated, GenerationOptions, HistoryView, ModelBackend } from '../core/ports.ts';
import { condensedInput, contextFields, createOpenAICondense } from './condense.ts';
import { toInputItems } from './conversations.ts';
import { startAfterFirstToken } from './first-token-gate.ts';
import { readTail } from './history.ts';
import { isAttachmentRefusal, toUpstreamError } from './openai-errors.ts';
import { type AttachmentOptions, attach, type ImageDetail } from './parts.ts';
import { streamResponse } from './response-stream.ts';

/**
 * Where a branch continues from: the response to chain on (`previous_response_id`) and the items it does not hold
 * yet. The response is the one of the last assistant item that has one and was not stopped: a stopped reply's
 * response was cancelled (or holds more than people saw), so it and everything after it is sent as plain items.
 */
export function chainPoint(
  history: readonly Item[],
  input: readonly Item[],
): { previousResponseId: string | undefined; items: Item[] } {
  for (let i = history.length - 1; i >= 0; i--) {
    const item = history[i]!;
    if (item.role === 'assistant' && item.responseId && !item.stopped) {
      return { previousResponseId: item.responseId, items: [...history.slice(i + 1), ...input] };
    }
  }
  return { previousResponseId: undefined, items: [...history, ...input] };
}

/** True when the API does not know the response we chained on (deleted, expired, never stored, other project). */
function isMissingPreviousResponse(error: unknown): boolean {
  return (
    (error instanceof OpenAI.BadRequestError || error instanceof OpenAI.NotFoundError) &&
    (error.code === 'previous_response_not_found' || error.param === 'previous_response_id')
  );
}

/**
 * A branch is a chain of stored responses: a turn passes `previous_response_id` and only the items the chain does not
 * hold, so a turn's request does not grow with the history, and a fork is free (any number of responses may start
 * from the same id). There is no provider state of the branch's own: its items carry the response ids.
 *
 * Instructions are not inherited through `previous_response_id`, so the current ones are passed on every request
 * (a change of /settings takes effect on the next turn; no instructions means none, not the old ones).
 */
export function createResponsesBackend(client: OpenAI, attachments?: AttachmentOptions): ModelBackend {
  async function generate(
    history: HistoryView,
    input: readonly Item[],
    options: GenerationOptions,
    signal: AbortSignal,
    onDelta: (text: string) => void,
    detail: ImageDetail,
  ): Promise<Generated> {
    // A new chain starts with the branch's condensed form (a summary, or compaction items to pass back); a chain
    // continued by `previous_response_id` already holds it (OpenAI: pass only the new items, never prune it).
    const open = (previousResponseId: string | undefined, items: readonly Item[]) =>
      streamResponse(
        async () =>
          client.responses.create(
            {
              model: options.model,
              ...(options.instructions ? { instructions: options.instructions } : {}),
              ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
              ...(previousResponseId ? { previous_response_id: previousResponseId } : {}),
              ...(options.cacheKey ? { prompt_cache_key: options.cacheKey } : {}),
              ...contextFields(options),
              input: [
                ...(previousResponseId ? [] : condensedInput(history.condensed)),
                ...toInputItems(items, await attach(items, attachments, detail)),
              ],
              store: true,
              stream: true,
            },
            { signal },
          ),
        { signal, onDelta },
      );
    // Only the part after the last stored response is sent: read back to it, not the whole thread.
    const tail = await readTail(history, (items) => items.some((item) => item.responseId));
    const { previousResponseId, items } = chainPoint(tail, input);
    try {
      try {
        return await open(previousResponseId, items);
      } catch (error) {
        // The model takes no images or files (the input's, or the chain's: the model was changed since): answer the
        // text alone, from the bot's own record without them. Nothing was streamed yet.
        if (isAttachmentRefusal(error)) {
          const all = [...(await contextItems(history)).items, ...input];
          if (!hasAttachments(all)) throw error;
          return { ...(await open(undefined, withoutAttachments(all))), attachmentsDropped: true };
        }
        // The chain is gone at the provider: start a new one from the bot's own record (nothing was streamed yet).
        if (!previousResponseId || !isMissingPreviousResponse(error)) throw error;
        return await open(undefined, [...(await contextItems(history)).items, ...input]);
      }
    } catch (error) {
      throw toUpstreamError(error, options.model);
    }
  }

  return {
    kind: 'responses',
    serverCompaction: true,
    condense: createOpenAICondense(client, async (items) =>
      toInputItems(items, await attach(items, attachments, 'auto')),
    ),

    async runTurn({ history, input, options, signal, onDelta }) {
      const result = await generate(history, input, options, signal, onDelta, 'auto');
      return { ...result, provider: undefined };
    },

    generateAlternatives({ history, input, variants }) {
      return startAfterFirstToken(variants, (variant) =>
        generate(
          history,
          input,
          variant.options,
          variant.signal,
          variant.onDelta,
          attachments?.forkImageDetail ?? 'low',
        ),
      );
    },

    // Nothing to move: the winner's items carry the response ids its next turn chains on.
    async transfer() {
      return undefined;
    },

    // Nothing to delete: stored responses of the chain may be shared by other branches (forks start from them).
    async release() {},
  };
}
