import OpenAI from 'openai';
import type { ResponseInputItem } from 'openai/resources/responses/responses';
import { hasAttachments, withoutAttachments } from '../core/attachments.ts';
import { contextItems } from '../core/context.ts';
import type { Condensed, Item, ProviderState } from '../core/model.ts';
import type { Generated, GenerationOptions, HistoryView, ModelBackend } from '../core/ports.ts';
import { condensedInput, contextFields, createOpenAICondense } from './condense.ts';
import { startAfterFirstToken } from './first-token-gate.ts';
import { isAttachmentRefusal, retryWhileLocked, toUpstreamError } from './openai-errors.ts';
import { type Attached, type AttachmentOptions, attach, responsesContent } from './parts.ts';
import { streamResponse } from './response-stream.ts';

/** The Conversations API takes at most this many items per call. */
export const ITEMS_PER_CALL = 20;

/** Items as input items; `attached` holds their images' and files' bytes (without it, text alone is sent). */
export function toInputItems(items: readonly Item[], attached?: Attached): ResponseInputItem[] {
  return items.map((item) => ({
    type: 'message',
    role: item.role,
    content: responsesContent(item, attached),
  }));
}

/**
 * Runs `send` with the items as they are, and when the model refuses their images or files, once more without them
 * (the text is still answered; the result says the attachments were dropped).
 */
export async function withAttachmentFallback(
  items: readonly Item[],
  send: (items: readonly Item[]) => Promise<Generated>,
): Promise<Generated> {
  try {
    return await send(items);
  } catch (error) {
    if (!hasAttachments(items) || !isAttachmentRefusal(error)) throw error;
    return { ...(await send(withoutAttachments(items))), attachmentsDropped: true };
  }
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * The default backend: each branch that the thread continues on is an OpenAI conversation. Alternatives are generated
 * from the bot's own record of the history (plain input, nothing stored), so a fork neither locks nor copies the
 * parent conversation; the winner then extends the parent's conversation (see `transfer`).
 */
export function createConversationsBackend(client: OpenAI, attachments?: AttachmentOptions): ModelBackend {
  /** Items with their attachments' bytes, for a turn (`auto` detail) or an alternative (the fork's detail). */
  async function inputOf(items: readonly Item[], detail: 'turn' | 'fork'): Promise<ResponseInputItem[]> {
    const attached = await attach(
      items,
      attachments,
      detail === 'fork' ? (attachments?.forkImageDetail ?? 'low') : 'auto',
    );
    return toInputItems(items, attached);
  }

  /** A new conversation holding a history: its condensed form (if any), then the items after it. */
  async function createConversation(
    history: readonly Item[],
    condensed: Condensed | undefined,
  ): Promise<string> {
    const [first = [], ...rest] = chunks(
      [...condensedInput(condensed), ...(await inputOf(history, 'turn'))],
      ITEMS_PER_CALL,
    );
    const conversation = await client.conversations.create({ items: first, metadata: { app: 'threadfork' } });
    for (const batch of rest) await client.conversations.items.create(conversation.id, { items: batch });
    return conversation.id;
  }

  async function appendToConversation(conversationId: string, items: readonly Item[]): Promise<void> {
    for (const batch of chunks(await inputOf(items, 'turn'), ITEMS_PER_CALL)) {
      await client.conversations.items.create(conversationId, { items: batch });
    }
  }

  function request(options: GenerationOptions) {
    return {
      model: options.model,
      ...(options.instructions ? { instructions: options.instructions } : {}),
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.cacheKey ? { prompt_cache_key: options.cacheKey } : {}),
      ...contextFields(options),
    };
  }

  const fromView = async (history: HistoryView) => {
    const { condensed, items } = await contextItems(history);
    return createConversation(items, condensed);
  };

  return {
    kind: 'conversations',
    serverCompaction: true,
    condense: createOpenAICondense(client, (items) => inputOf(items, 'turn')),

    async runTurn({ provider, history, input, options, signal, onDelta, resumed }) {
      try {
        // An earlier attempt at this turn may have left items in the branch's conversation, or may still be adding
        // them: a process that lost its lock while its request streamed, whose reply the provider appends when it
        // ends, after any cleanup done here. So a resumed turn answers in a new conversation made from the bot's
        // own record; the core releases the old one once this turn is committed.
        let conversationId =
          provider?.conversationId && !resumed ? provider.conversationId : await fromView(history);
        const send = (items: readonly Item[]) =>
          streamResponse(
            async () => {
              const body = await inputOf(items, 'turn');
              return retryWhileLocked(
                () =>
                  client.responses.create(
                    { ...request(options), conversation: conversationId, input: body, stream: true },
                    { signal },
                  ),
                { signal },
              );
            },
            { signal, onDelta },
          );
        let result: Generated;
        try {
          result = await send(input);
        } catch (error) {
          // The model takes no images or files (a refusal comes before any text). When the conversation holds some
          // (the thread's model was changed since), the text alone goes to a new conversation made from the bot's
          // record without them, and the core releases the old one; else the input goes again without them.
          if (!isAttachmentRefusal(error)) throw error;
          const { condensed, items: past } = await contextItems(history);
          if (!hasAttachments([...past, ...input])) throw error;
          if (hasAttachments(past))
            conversationId = await createConversation(withoutAttachments(past), condensed);
          result = { ...(await send(withoutAttachments(input))), attachmentsDropped: true };
        }
        // A stopped reply never reached the conversation; add the part people saw so both records agree.
        if (result.stopped && result.text) {
          await appendToConversation(conversationId, [
            { id: 'stopped', role: 'assistant', text: result.text },
          ]);
        }
        return { ...result, provider: { conversationId } };
      } catch (error) {
        throw toUpstreamError(error, options.model);
      }
    },

    async generateAlternatives({ history, input, variants }) {
      // The condensed form goes first, so an alternative sees what the branch's next turn would: never the raw
      // history it stands for.
      const { condensed, items: past } = await contextItems(history);
      const before = condensedInput(condensed);
      const all = [...past, ...input];
      const withAll = [...before, ...(await inputOf(all, 'fork'))];
      return startAfterFirstToken(variants, async (variant): Promise<Generated> => {
        try {
          return await withAttachmentFallback(all, async (items) =>
            streamResponse(
              async () =>
                client.responses.create(
                  {
                    ...request(variant.options),
                    input: items === all ? withAll : [...before, ...(await inputOf(items, 'fork'))],
                    store: false,
                    stream: true,
                  },
                  { signal: variant.signal },
                ),
              { signal: variant.signal, onDelta: variant.onDelta },
            ),
          );
        } catch (error) {
          throw toUpstreamError(error, variant.options.model);
        }
      });
    },

    async transfer({ provider, from, to, sharedPrefix }): Promise<ProviderState | undefined> {
      const conversationId = provider.conversationId;
      if (!conversationId) return undefined;
      // The conversation no longer holds the items at the fork point (they are inside a summary or compaction made
      // after it): the winner gets a new conversation made from its own view on its next turn.
      if ((from.condensed?.covers ?? 0) > sharedPrefix || from.condensed !== to.condensed) return undefined;
      try {
        let messagesToDrop = from.length - sharedPrefix;
        if (messagesToDrop > 0) {
          // Newest first: walk back over exactly the items past the fork point (reasoning items included).
          for await (const item of client.conversations.items.list(conversationId, {
            order: 'desc',
            limit: Math.min(100, messagesToDrop + 5),
          })) {
            if (messagesToDrop === 0) break;
            if (item.type === 'message') messagesToDrop -= 1;
            if (item.id)
              await client.conversations.items.delete(item.id, { conversation_id: conversationId });
          }
        }
        await appendToConversation(conversationId, await to.read(sharedPrefix));
        return { conversationId };
      } catch (error) {
        throw toUpstreamError(error, 'conversations');
      }
    },

    async release(provider) {
      if (!provider.conversationId) return;
      try {
        await client.conversations.delete(provider.conversationId);
      } catch (error) {
        if (!(error instanceof OpenAI.NotFoundError)) throw toUpstreamError(error, 'conversations');
      }
    },
  };
}
