// Request body validation against Discord's OpenAPI description (bundled gzipped next to this file;
// DISCORD_OPENAPI_SPEC may point at another copy, plain or .gz).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { FormErrorCollector, invalidForm } from './errors.ts';

const SPEC_ID = 'discord-openapi';

type Ajv = InstanceType<typeof Ajv2020.default>;
type ValidateFn = ReturnType<Ajv['compile']>;

let ajv: Ajv | undefined;
const cache = new Map<string, ValidateFn>();

function loadSpec(): unknown {
  const path = process.env.DISCORD_OPENAPI_SPEC ?? new URL('./discord-openapi.json.gz', import.meta.url);
  const raw = readFileSync(path);
  const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return acceptPermissionStrings(JSON.parse(text));
}

/**
 * Discord sends and accepts permission bit sets as decimal strings (they outgrow a double), and discord.js sends
 * them so; the OpenAPI description types `default_member_permissions` as an integer. Accept both.
 */
function acceptPermissionStrings(spec: unknown): unknown {
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'default_member_permissions' && value && typeof value === 'object' && 'type' in value) {
        (node as Record<string, unknown>)[key] = { anyOf: [value, { type: 'string', pattern: '^[0-9]+$' }] };
      } else {
        visit(value);
      }
    }
  };
  visit(spec);
  return spec;
}

function getAjv(): Ajv {
  if (ajv) return ajv;
  const instance = new Ajv2020.default({ strict: false, allErrors: true, validateSchema: false });
  addFormats.default(instance);
  instance.addFormat('snowflake', /^(0|[1-9][0-9]*)$/);
  instance.addFormat('nonce', { validate: () => true });
  instance.addFormat('double', { type: 'number', validate: () => true });
  instance.addSchema(loadSpec() as object, SPEC_ID);
  ajv = instance;
  return instance;
}

export function schemaRef(name: string): { $ref: string } {
  return { $ref: `${SPEC_ID}#/components/schemas/${name}` };
}

/** Body schemas of the routes the emulator implements, by key. */
const BODY_SCHEMAS: Record<string, object> = {
  MessageCreateRequest: schemaRef('MessageCreateRequest'),
  MessageEditRequestPartial: schemaRef('MessageEditRequestPartial'),
  UpdateThreadRequestPartial: schemaRef('UpdateThreadRequestPartial'),
  UpdateChannel: {
    anyOf: [schemaRef('UpdateGuildChannelRequestPartial'), schemaRef('UpdateThreadRequestPartial')],
  },
  CreateTextThreadWithMessageRequest: schemaRef('CreateTextThreadWithMessageRequest'),
  CreateTextThreadWithoutMessageRequest: schemaRef('CreateTextThreadWithoutMessageRequest'),
  ApplicationCommandCreateRequest: schemaRef('ApplicationCommandCreateRequest'),
  CommandsBulk: {
    type: ['array', 'null'],
    items: schemaRef('ApplicationCommandUpdateRequest'),
    maxItems: 130,
  },
  InteractionCallback: {
    anyOf: [
      schemaRef('ApplicationCommandAutocompleteCallbackRequest'),
      schemaRef('CreateMessageInteractionCallbackRequest'),
      schemaRef('ModalInteractionCallbackRequest'),
      schemaRef('UpdateMessageInteractionCallbackRequest'),
    ],
  },
  WebhookExecute: {
    anyOf: [schemaRef('IncomingWebhookRequestPartial'), schemaRef('IncomingWebhookUpdateRequestPartial')],
  },
  IncomingWebhookUpdateRequestPartial: schemaRef('IncomingWebhookUpdateRequestPartial'),
};

export type SchemaKey = keyof typeof BODY_SCHEMAS;

function validator(key: string): ValidateFn {
  const hit = cache.get(key);
  if (hit) return hit;
  const schema = BODY_SCHEMAS[key];
  if (!schema) throw new Error(`no schema ${key}`);
  const fn = getAjv().compile(schema);
  cache.set(key, fn);
  return fn;
}

const CODES: Record<string, string> = {
  maxLength: 'BASE_TYPE_MAX_LENGTH',
  minLength: 'BASE_TYPE_MIN_LENGTH',
  maxItems: 'BASE_TYPE_MAX_LENGTH',
  minItems: 'BASE_TYPE_MIN_LENGTH',
  required: 'BASE_TYPE_REQUIRED',
  type: 'BASE_TYPE_INVALID',
  enum: 'BASE_TYPE_CHOICES',
  format: 'BASE_TYPE_INVALID',
  pattern: 'BASE_TYPE_INVALID',
  maximum: 'NUMBER_TYPE_MAX',
  minimum: 'NUMBER_TYPE_MIN',
};

/** Throws Discord's 400 50035 when body does not match the schema. */
export function validateBody(key: SchemaKey, body: unknown): void {
  const fn = validator(key);
  if (fn(body)) return;
  const errs = fn.errors ?? [];
  // Union branches produce noise; prefer the leaf errors, deepest first.
  const leaves = errs.filter((e) => !['anyOf', 'oneOf', 'allOf', 'if', 'const'].includes(e.keyword));
  const chosen = (leaves.length > 0 ? leaves : errs)
    .slice()
    .sort((a, b) => b.instancePath.length - a.instancePath.length)
    .slice(0, 10);
  const c = new FormErrorCollector();
  const seen = new Set<string>();
  for (const e of chosen) {
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    if (e.keyword === 'required')
      path.push(String((e.params as { missingProperty?: string }).missingProperty));
    const key2 = `${path.join('.')}|${e.keyword}`;
    if (seen.has(key2)) continue;
    seen.add(key2);
    const message =
      e.keyword === 'required' ? 'This field is required' : `Invalid value: ${e.message ?? 'invalid'}.`;
    c.add(path, CODES[e.keyword] ?? 'BASE_TYPE_INVALID', message);
  }
  throw invalidForm(c.root);
}

/** Compiles every body schema now, so the first request is not slow. */
export function warmUpValidators(): void {
  for (const key of Object.keys(BODY_SCHEMAS)) validator(key);
}
