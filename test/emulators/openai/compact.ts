/**
 * POST /v1/responses/compact: the standalone compaction. The output is the user messages of the input, then one
 * compaction item standing for everything the model read (a compaction item of the input included); passed as the
 * next input, it makes what precedes it redundant (the emulator ignores it).
 */
import { COMPACTION_ITEM_TOKENS, compactionOf, render } from './context.ts';
import { badRequest, invalidType, missingParam, modelNotFound } from './errors.ts';
import { sendJson } from './http.ts';
import { newItemId, newResponseId, nowSeconds } from './ids.ts';
import { normalizeInput, withId } from './input.ts';
import { chainHistory } from './responses.ts';
import type { Ctx, Route } from './router.ts';
import type { Json } from './types.ts';
import { bodyObject, optionalString } from './validate.ts';

function compactResponse({ state, body, res, rec }: Ctx): void {
  const b = bodyObject(body);
  const model = b.model;
  if (model === undefined || model === null) throw missingParam('model');
  if (typeof model !== 'string') throw invalidType('model', 'a string', model);
  if (!state.config.models.includes(model)) throw modelNotFound(model);
  const instructions = optionalString(b, 'instructions');
  optionalString(b, 'prompt_cache_key');
  const previousResponseId = optionalString(b, 'previous_response_id');
  let history: Json[] = [];
  if (previousResponseId !== undefined) {
    const prev = state.responses.get(previousResponseId);
    if (!prev?.stored) {
      throw badRequest(
        `Previous response with id '${previousResponseId}' not found.`,
        'previous_response_id',
        'previous_response_not_found',
      );
    }
    history = chainHistory(prev);
  }
  const input = normalizeInput(b.input, 'input', (id) => state.items.get(id)).map(withId);
  const seen = render([...history, ...input], {
    instructions,
    window: state.contextWindow(model),
    truncation: false,
    sealer: state.sealer,
  });
  const compacted = compactionOf(seen.compaction, seen.messages, seen.inputTokens);
  const item: Json = {
    id: newItemId('cmp'),
    type: 'compaction',
    encrypted_content: state.sealer.seal(compacted),
  };
  const kept = seen.items.filter((i) => i.type === 'message' && i.role === 'user');
  const output = [...kept.map((i) => structuredClone(i)), item];
  state.remember([item]);
  rec.seen = {
    model,
    messages: seen.messages,
    ...(seen.compaction ? { compaction: seen.compaction } : {}),
    compacted,
    inputTokens: seen.inputTokens,
    cachedTokens: 0,
    truncatedItems: 0,
  };
  const outputTokens = COMPACTION_ITEM_TOKENS;
  sendJson(res, 200, {
    id: newResponseId(),
    object: 'response.compaction',
    output,
    created_at: nowSeconds(),
    usage: {
      input_tokens: seen.inputTokens,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: seen.inputTokens + outputTokens,
    },
  });
}

export const compactRoutes: Route[] = [
  { method: 'POST', path: '/v1/responses/compact', handler: compactResponse },
];
