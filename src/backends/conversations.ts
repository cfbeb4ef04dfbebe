import OpenAI from 'openai';
import type { ResponseInputItem } from 'openai/resources/responses/responses';
import type { Item, ProviderState } from '../core/model.ts';
import type { Generated, GenerationOptions, ModelBackend } from '../core/ports.ts';
import { retryWhileLocked, toUpstreamError } from './openai-errors.ts';
import { streamResponse } from './response-stream.ts';

/** The Conversations API takes at most this many items per call. */
export const ITEMS_PER_CALL = 20;

export function toInputItems(items: readonly Item[]): ResponseInputItem[] {
  return items.map((item) => ({ type: 'message', role: item.role, content: item.text }));
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
export function createConversationsBackend(client: OpenAI): ModelBackend {
  async function createConversation(history: readonly Item[]): Promise<string> {
    const [first = [], ...rest] = chunks(toInputItems(history), ITEMS_PER_CALL);
    const conversation = await client.conversations.create({ items: first, metadata: { app: 'threadfork' } });
    for (const batch of rest) await client.conversations.items.create(conversation.id, { items: batch });
    return conversation.id;
  }

  async function appendToConversation(conversationId: string, items: readonly Item[]): Promise<void> {
    for (const batch of chunks(toInputItems(items), ITEMS_PER_CALL)) {
      await client.conversations.items.create(conversationId, { items: batch });
    }
  }

  function request(options: GenerationOptions) {
    return {
      model: options.model,
      ...(options.instructions ? { instructions: options.instructions } : {}),
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    };
  }

  return {
    kind: 'conversations',

    async runTurn({ provider, history, input, options, signal, onDelta, resumed }) {
      try {
        // An earlier attempt at this turn may have left items in the branch's conversation, or may still be adding
        // them: a process that lost its lock while its request streamed, whose reply the provider appends when it
        // ends, after any cleanup done here. So a resumed turn answers in a new conversation made from the bot's
        // own record; the core releases the old one once this turn is committed.
        const conversationId =
          provider?.conversationId && !resumed
            ? provider.conversationId
            : await createConversation(await history.read());
        const result = await streamResponse(
          () =>
            retryWhileLocked(
              () =>
                client.responses.create(
                  {
                    ...request(options),
                    conversation: conversationId,
                    input: toInputItems(input),
                    stream: true,
                  },
                  { signal },
                ),
              { signal },
            ),
          { signal, onDelta },
        );
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
      const items = toInputItems([...(await history.read()), ...input]);
      return Promise.allSettled(
        variants.map(async (variant): Promise<Generated> => {
          try {
            return await streamResponse(
              () =>
                client.responses.create(
                  { ...request(variant.options), input: items, store: false, stream: true },
                  { signal: variant.signal },
                ),
              { signal: variant.signal, onDelta: variant.onDelta },
            );
          } catch (error) {
            throw toUpstreamError(error, variant.options.model);
          }
        }),
      );
    },

    async transfer({ provider, from, to, sharedPrefix }): Promise<ProviderState | undefined> {
      const conversationId = provider.conversationId;
      if (!conversationId) return undefined;
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
