/** Parameter checks with OpenAI's wording ("Invalid 'x': ... Expected a value <= 2, but got 3 instead."). */
import { badRequest, invalidType } from './errors.ts';
import { isObject } from './input.ts';

export function optionalNumber(
  body: Record<string, unknown>,
  param: string,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  const kind = opts.integer ? 'integer' : 'decimal';
  if (typeof v !== 'number' || Number.isNaN(v) || (opts.integer && !Number.isInteger(v))) {
    throw invalidType(param, opts.integer ? 'an integer' : 'a decimal', v);
  }
  if (opts.min !== undefined && v < opts.min) {
    throw badRequest(
      `Invalid '${param}': ${kind} below minimum value. Expected a value >= ${opts.min}, but got ${v} instead.`,
      param,
      `${kind}_below_min_value`,
    );
  }
  if (opts.max !== undefined && v > opts.max) {
    throw badRequest(
      `Invalid '${param}': ${kind} above maximum value. Expected a value <= ${opts.max}, but got ${v} instead.`,
      param,
      `${kind}_above_max_value`,
    );
  }
  return v;
}

export function optionalBoolean(body: Record<string, unknown>, param: string): boolean | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalidType(param, 'a boolean', v);
  return v;
}

export function optionalString(body: Record<string, unknown>, param: string): string | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidType(param, 'a string', v);
  return v;
}

/** Metadata: at most 16 string pairs, keys up to 64 characters, values up to 512. */
export function metadataOf(v: unknown, param = 'metadata'): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalidType(param, 'an object', v);
  const entries = Object.entries(v);
  if (entries.length > 16) {
    throw badRequest(
      `Invalid '${param}': too many properties. Expected an object with at most 16 properties, but got an object with ${entries.length} properties instead.`,
      param,
      'object_above_max_properties',
    );
  }
  const out: Record<string, string> = {};
  for (const [k, value] of entries) {
    if (k.length > 64) {
      throw badRequest(
        `Invalid '${param}': string too long. Expected a string with maximum length 64, but got a string with length ${k.length} instead.`,
        `${param}.${k}`,
        'string_above_max_length',
      );
    }
    if (typeof value !== 'string') throw invalidType(`${param}.${k}`, 'a string', value);
    if (value.length > 512) {
      throw badRequest(
        `Invalid '${param}.${k}': string too long. Expected a string with maximum length 512, but got a string with length ${value.length} instead.`,
        `${param}.${k}`,
        'string_above_max_length',
      );
    }
    out[k] = value;
  }
  return out;
}

export function maxItems(v: unknown[], param: string, max: number): void {
  if (v.length > max) {
    throw badRequest(
      `Invalid '${param}': array too long. Expected an array with maximum length ${max}, but got an array with length ${v.length} instead.`,
      param,
      'array_above_max_length',
    );
  }
}

export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isObject(body)) throw invalidType('body', 'an object', body);
  return body;
}
