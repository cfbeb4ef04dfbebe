import OpenAI from 'openai';
import type { ResponseInputItem } from 'openai/resources/responses/responses';
import { condensedTokens, summaryMessage, summaryRequest } from '../core/context.ts';
import type { Condensed, Item } from '../core/model.ts';
import type { CondensedContent, GenerationOptions, ModelBackend, Usage } from '../core/ports.ts';
import { toUpstreamError } from './openai-errors.ts';

/**
 * A branch's condensed form as Responses API input: a summary as one developer message; a compaction as the items
 * the provider returned, passed back unchanged (OpenAI's compaction guide: the latest compaction item carries the
 * context, the items before it may be dropped).
 */
export function condensedInput(condensed: Condensed | undefined): ResponseInputItem[] {
  if (!condensed) return [];
  if (condensed.kind === 'compaction' && condensed.items?.length)
    return condensed.items as unknown as ResponseInputItem[];
  return [{ type: 'message', role: 'developer', content: summaryMessage(condensed) }];
}

/** The Responses API request fields for a generation's context handling. */
export function contextFields(options: GenerationOptions) {
  return {
    ...(options.compactThreshold
      ? { context_management: [{ type: 'compaction', compact_threshold: options.compactThreshold }] }
      : {}),
    ...(options.truncate ? { truncation: 'auto' as const } : {}),
  };
}

const usageOf = (usage: { input_tokens: number; output_tokens: number } | undefined): Usage => ({
  inputTokens: usage?.input_tokens ?? 0,
  outputTokens: usage?.output_tokens ?? 0,
});

/**
 * `condense` for the OpenAI backends. `compaction`: the standalone `POST /responses/compact` over the previous
 * condensed form and the items to fold; its output (the user messages, then one compaction item) is what later
 * requests pass back. A server without that endpoint (an OpenAI-compatible one) gets a summary written by the model.
 */
export function createOpenAICondense(
  client: OpenAI,
  inputOf: (items: readonly Item[]) => Promise<ResponseInputItem[]>,
): ModelBackend['condense'] {
  return async ({ previous, items, how, options, maxTokens, signal }) => {
    try {
      if (how === 'compaction') {
        try {
          const compacted = await client.responses.compact(
            {
              model: options.model,
              input: [...condensedInput(previous), ...(await inputOf(items))],
              ...(options.instructions ? { instructions: options.instructions } : {}),
            },
            { signal },
          );
          return {
            ...bounded(
              compacted.output.map((item) => ({ ...item }) as Record<string, unknown>),
              maxTokens,
            ),
            usage: usageOf(compacted.usage),
          };
        } catch (error) {
          if (!(error instanceof OpenAI.NotFoundError)) throw error;
        }
      }
      const ask = summaryRequest(previous, items, maxTokens);
      const response = await client.responses.create(
        {
          model: options.model,
          instructions: ask.instructions,
          input: ask.text,
          max_output_tokens: maxTokens,
          store: false,
        },
        { signal },
      );
      return { kind: 'summary', text: response.output_text.trim(), usage: usageOf(response.usage) };
    } catch (error) {
      throw toUpstreamError(error, options.model);
    }
  };
}

/**
 * The compacted output, kept within `maxTokens`: the compact endpoint returns every user message before its
 * compaction item, and folding it again and again would let them pile up for good. The compaction item stays, with
 * as many of the latest user messages before it as fit.
 */
function bounded(output: Record<string, unknown>[], maxTokens: number): CondensedContent {
  const kept: Record<string, unknown>[] = [];
  for (let i = output.length - 1; i >= 0; i -= 1) {
    const item = output[i]!;
    const cost = condensedTokens({
      kind: 'compaction',
      text: '',
      items: [...kept, item],
      covers: 0,
      madeAt: 0,
      by: 'model',
      at: 0,
    });
    if (item.type !== 'compaction' && cost > maxTokens) break;
    kept.unshift(item);
  }
  return { kind: 'compaction', text: '', items: kept };
}
