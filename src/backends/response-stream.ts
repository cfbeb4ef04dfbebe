import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { UpstreamError } from '../core/errors.ts';
import type { Generated, Usage } from '../core/ports.ts';

/**
 * Reads a Responses API stream into the core's Generated. Text arrives through `onDelta`; a refusal becomes the reply
 * text with `refused` set; an abort through `signal` ends it early with what had arrived.
 */
export async function streamResponse(
  open: () => Promise<AsyncIterable<ResponseStreamEvent>>,
  { signal, onDelta }: { signal: AbortSignal; onDelta(text: string): void },
): Promise<Generated> {
  let text = '';
  let refusal = '';
  let responseId: string | undefined;
  let usage: Usage = { inputTokens: 0, outputTokens: 0 };
  // Items of the provider's own compaction (server-side `context_management`), kept as they came to be passed back.
  let compaction: Record<string, unknown>[] = [];
  try {
    const stream = await open();
    for await (const event of stream) {
      switch (event.type) {
        case 'response.created':
          responseId = event.response.id;
          break;
        case 'response.output_text.delta':
          text += event.delta;
          onDelta(event.delta);
          break;
        case 'response.refusal.delta':
          refusal += event.delta;
          break;
        case 'response.output_item.done':
          if (event.item.type === 'compaction') compaction.push({ ...event.item });
          break;
        case 'response.completed':
        case 'response.incomplete':
          responseId = event.response.id;
          if (compaction.length === 0)
            compaction = event.response.output
              .filter((item) => item.type === 'compaction')
              .map((item) => ({ ...item }));
          if (event.response.usage) {
            const cached = event.response.usage.input_tokens_details?.cached_tokens ?? 0;
            usage = {
              inputTokens: event.response.usage.input_tokens,
              outputTokens: event.response.usage.output_tokens,
              ...(cached > 0 ? { cachedInputTokens: cached } : {}),
            };
          }
          break;
        case 'response.failed':
          throw new UpstreamError(
            'unavailable',
            `The model failed: ${event.response.error?.message ?? 'unknown error'}`,
            {
              retryable: true,
            },
          );
        case 'error':
          throw new UpstreamError('unavailable', `The model failed: ${event.message}`, { retryable: true });
        default:
          break;
      }
    }
  } catch (error) {
    if (
      !(
        signal.aborted &&
        (error instanceof OpenAI.APIUserAbortError || (error as Error).name === 'AbortError')
      )
    )
      throw error;
    return { text, usage, responseId, stopped: true, refused: false };
  }
  const compacted = compaction.length > 0 ? { compaction } : {};
  if (signal.aborted) return { text, usage, responseId, stopped: true, refused: false, ...compacted };
  if (refusal && !text)
    return { text: refusal, usage, responseId, stopped: false, refused: true, ...compacted };
  return { text, usage, responseId, stopped: false, refused: false, ...compacted };
}
