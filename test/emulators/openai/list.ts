/** Cursor lists as the API returns them: {object:'list', data, first_id, last_id, has_more}. */
import { badRequest } from './errors.ts';
import type { Json } from './types.ts';

export interface ListPage {
  object: 'list';
  data: Json[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

export function listPage(data: Json[], hasMore: boolean): ListPage {
  const first = data[0];
  const last = data[data.length - 1];
  return {
    object: 'list',
    data,
    first_id: typeof first?.id === 'string' ? first.id : null,
    last_id: typeof last?.id === 'string' ? last.id : null,
    has_more: hasMore,
  };
}

/** `after` (an item id), `limit` (1..100, default 20) and `order` ('asc' | 'desc', default 'desc'). */
export function paginate(items: Json[], query: Record<string, string>): ListPage {
  const order = query.order ?? 'desc';
  if (order !== 'asc' && order !== 'desc') {
    throw badRequest(
      `Invalid value: '${order}'. Supported values are: 'asc' and 'desc'.`,
      'order',
      'invalid_value',
    );
  }
  let limit = 20;
  if (query.limit !== undefined) {
    const n = Number(query.limit);
    if (!Number.isInteger(n)) {
      throw badRequest(
        `Invalid 'limit': expected an integer, but got '${query.limit}' instead.`,
        'limit',
        'invalid_type',
      );
    }
    if (n < 1) {
      throw badRequest(
        `Invalid 'limit': integer below minimum value. Expected a value >= 1, but got ${n} instead.`,
        'limit',
        'integer_below_min_value',
      );
    }
    if (n > 100) {
      throw badRequest(
        `Invalid 'limit': integer above maximum value. Expected a value <= 100, but got ${n} instead.`,
        'limit',
        'integer_above_max_value',
      );
    }
    limit = n;
  }
  const ordered = order === 'asc' ? items : [...items].reverse();
  let start = 0;
  if (query.after !== undefined && query.after !== '') {
    const idx = ordered.findIndex((i) => i.id === query.after);
    start = idx === -1 ? ordered.length : idx + 1;
  }
  const data = ordered.slice(start, start + limit);
  return listPage(structuredClone(data), start + limit < ordered.length);
}
