/** Input items: validation, normalization into the shape the API stores and lists, and the text the model sees. */
import { badRequest, invalidType, notFound } from './errors.ts';
import { newItemId, newMessageId } from './ids.ts';
import { attachmentOf, checkInputPart } from './media.ts';
import type { Attachment, Json, ReplyMessage, Role } from './types.ts';

const ROLES: readonly Role[] = ['user', 'assistant', 'system', 'developer'];
const ITEM_ID_PREFIX: Record<string, string> = {
  function_call: 'fc',
  function_call_output: 'fco',
  reasoning: 'rs',
  custom_tool_call: 'ctc',
  custom_tool_call_output: 'ctco',
  compaction: 'cmp',
};

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function normalizePart(part: unknown, role: Role, param: string): Json {
  if (typeof part === 'string') return textPart(role, part);
  if (!isObject(part)) throw invalidType(param, 'an object', part);
  const type = part.type;
  if (typeof type !== 'string')
    throw badRequest(
      `Missing required parameter: '${param}.type'.`,
      `${param}.type`,
      'missing_required_parameter',
    );
  switch (type) {
    case 'input_text':
    case 'output_text':
    case 'text': {
      if (typeof part.text !== 'string')
        throw badRequest(
          `Missing required parameter: '${param}.text'.`,
          `${param}.text`,
          'missing_required_parameter',
        );
      if (type === 'output_text')
        return { type, text: part.text, annotations: part.annotations ?? [], logprobs: part.logprobs ?? [] };
      return { type, text: part.text };
    }
    case 'refusal':
      if (typeof part.refusal !== 'string')
        throw badRequest(
          `Missing required parameter: '${param}.refusal'.`,
          `${param}.refusal`,
          'missing_required_parameter',
        );
      return { type, refusal: part.refusal };
    case 'input_image':
    case 'input_file':
      return checkInputPart(part, param);
    case 'input_audio':
      return { ...part };
    default:
      throw badRequest(
        `Invalid value: '${type}'. Supported values are: 'input_text', 'input_image', 'output_text', 'refusal', 'input_file', 'computer_screenshot', and 'summary_text'.`,
        `${param}.type`,
        'invalid_value',
      );
  }
}

function textPart(role: Role, text: string): Json {
  return role === 'assistant'
    ? { type: 'output_text', text, annotations: [], logprobs: [] }
    : { type: 'input_text', text };
}

/** One input item, validated; message items come out as {type:'message', role, content:[parts]} without an id. */
function normalizeItem(item: unknown, param: string, lookup: (id: string) => Json | undefined): Json {
  if (!isObject(item)) throw invalidType(param, 'an object', item);
  const type = item.type ?? 'message';
  if (typeof type !== 'string') throw invalidType(`${param}.type`, 'a string', type);
  if (type === 'item_reference') {
    const id = item.id;
    if (typeof id !== 'string')
      throw badRequest(
        `Missing required parameter: '${param}.id'.`,
        `${param}.id`,
        'missing_required_parameter',
      );
    const found = lookup(id);
    if (!found) throw notFound(`Item with id '${id}' not found.`, param);
    const { id: _old, ...rest } = found;
    return structuredClone(rest);
  }
  if (type === 'compaction' && typeof item.encrypted_content !== 'string') {
    throw badRequest(
      `Missing required parameter: '${param}.encrypted_content'.`,
      `${param}.encrypted_content`,
      'missing_required_parameter',
    );
  }
  if (type !== 'message') {
    const { id: _ignored, ...rest } = item;
    return structuredClone(rest);
  }
  const role = item.role;
  if (role === undefined)
    throw badRequest(
      `Missing required parameter: '${param}.role'.`,
      `${param}.role`,
      'missing_required_parameter',
    );
  if (typeof role !== 'string' || !ROLES.includes(role as Role)) {
    throw badRequest(
      `Invalid value: '${String(role)}'. Supported values are: 'assistant', 'system', 'developer', and 'user'.`,
      `${param}.role`,
      'invalid_value',
    );
  }
  const r = role as Role;
  const content = item.content;
  let parts: Json[];
  if (typeof content === 'string') parts = [textPart(r, content)];
  else if (Array.isArray(content))
    parts = content.map((p, i) => normalizePart(p, r, `${param}.content[${i}]`));
  else if (content === undefined)
    throw badRequest(
      `Missing required parameter: '${param}.content'.`,
      `${param}.content`,
      'missing_required_parameter',
    );
  else throw invalidType(`${param}.content`, 'one of a string or array of objects', content);
  return { type: 'message', role: r, content: parts };
}

/** `input` of POST /v1/responses: a string (one user message) or an array of items. */
export function normalizeInput(
  input: unknown,
  param: string,
  lookup: (id: string) => Json | undefined,
): Json[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string')
    return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: input }] }];
  if (!Array.isArray(input)) throw invalidType(param, 'one of a string or array of input items', input);
  return input.map((item, i) => normalizeItem(item, `${param}[${i}]`, lookup));
}

/** An item as the API stores and lists it: with an id (and status for messages). */
export function withId(item: Json): Json {
  if (item.type === 'message') {
    return {
      id: newMessageId(),
      type: 'message',
      status: 'completed',
      content: item.content,
      role: item.role,
    };
  }
  const type = String(item.type);
  return { id: newItemId(ITEM_ID_PREFIX[type] ?? type), ...item };
}

/** What the model sees of an item: the role and the text of a message, nothing for other item types. */
export function messageOf(item: Json): ReplyMessage | undefined {
  if (item.type !== 'message' || !Array.isArray(item.content)) return undefined;
  const role = item.role as Role;
  let text = '';
  const attachments: Attachment[] = [];
  for (const part of item.content) {
    if (!isObject(part)) continue;
    if (typeof part.text === 'string') text += part.text;
    else if (typeof part.refusal === 'string') text += part.refusal;
    const attachment = attachmentOf(part);
    if (attachment) attachments.push(attachment);
  }
  return attachments.length > 0 ? { role, text, attachments } : { role, text };
}

export function messagesOf(items: Json[]): ReplyMessage[] {
  const out: ReplyMessage[] = [];
  for (const item of items) {
    const m = messageOf(item);
    if (m) out.push(m);
  }
  return out;
}
