/**
 * Validates bodies against OpenAI's OpenAPI description (/work/shared/specs/openai-openapi.json) with Ajv 2020:
 * the whole spec is added as one schema with an $id, and a body is checked against `$id#/components/schemas/Name`.
 * OpenAPI 3.0 leftovers (`nullable: true`) are rewritten to JSON Schema before Ajv sees them.
 *
 *   const v = openAISpecValidator();
 *   v.assertValid('Response', body); // throws with Ajv's errors
 */
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

export const DEFAULT_OPENAI_SPEC_PATH = '/work/shared/specs/openai-openapi.json';
const SPEC_ID = 'https://openai.emulator.local/openapi.json';

// Both packages are CommonJS with a `default` export; under Node's ESM interop the default import is the module.
type AjvClass = typeof Ajv2020Module.default;
type AjvInstance = InstanceType<AjvClass>;
const Ajv2020 = ((Ajv2020Module as unknown as { default?: AjvClass }).default ??
  (Ajv2020Module as unknown as AjvClass)) as AjvClass;
type AddFormats = typeof addFormatsModule.default;
const addFormats = ((addFormatsModule as unknown as { default?: AddFormats }).default ??
  (addFormatsModule as unknown as AddFormats)) as AddFormats;

export interface SpecValidationResult {
  valid: boolean;
  errors: string[];
}

export interface SpecValidator {
  /** Validates `data` against `#/components/schemas/<name>`. */
  validate(name: string, data: unknown): SpecValidationResult;
  /** Throws an Error listing the schema violations. */
  assertValid(name: string, data: unknown): void;
  /**
   * The member of a union schema (e.g. `ResponseStreamEvent`) whose `type` enum holds `type`: validating against
   * it gives precise errors where the union gives one error per member.
   */
  memberFor(union: string, type: string): string | undefined;
  /** Validates a Responses stream event against its own schema (found by its `type`). */
  assertValidStreamEvent(event: { type: string }): void;
}

/** Rewrites `nullable: true` (OpenAPI 3.0) into JSON Schema 2020 that Ajv accepts. */
function rewriteNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteNullable);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = rewriteNullable(v);
  if (out.nullable === true) {
    delete out.nullable;
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
      return out;
    }
    return { anyOf: [out, { type: 'null' }] };
  }
  if (out.nullable === false) delete out.nullable;
  return out;
}

export function createSpecValidator(specPath: string = DEFAULT_OPENAI_SPEC_PATH): SpecValidator {
  const spec = rewriteNullable(JSON.parse(readFileSync(specPath, 'utf8'))) as Record<string, unknown>;
  const ajv: AjvInstance = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addFormat('unixtime', true);
  ajv.addSchema({ ...spec, $id: SPEC_ID });
  const validate = (name: string, data: unknown): SpecValidationResult => {
    const fn = ajv.getSchema(`${SPEC_ID}#/components/schemas/${name}`);
    if (!fn) throw new Error(`No schema #/components/schemas/${name} in ${specPath}`);
    const valid = fn(data) as boolean;
    const errors = (fn.errors ?? []).map(
      (e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
    );
    return { valid, errors: valid ? [] : errors };
  };
  const schemas = (spec.components as { schemas: Record<string, Record<string, unknown>> }).schemas;
  const memberFor = (union: string, type: string): string | undefined => {
    const members = (schemas[union]?.anyOf ?? schemas[union]?.oneOf ?? []) as { $ref?: string }[];
    for (const m of members) {
      const name = m.$ref?.split('/').pop();
      const props = name
        ? (schemas[name]?.properties as Record<string, { enum?: unknown[] }> | undefined)
        : undefined;
      if (name && props?.type?.enum?.includes(type)) return name;
    }
    return undefined;
  };
  const assertValid = (name: string, data: unknown): void => {
    const r = validate(name, data);
    if (!r.valid) {
      throw new Error(
        `Body does not match ${name}:\n${r.errors.slice(0, 20).join('\n')}\n${JSON.stringify(data).slice(0, 2000)}`,
      );
    }
  };
  return {
    validate,
    assertValid,
    memberFor,
    assertValidStreamEvent(event) {
      const name = memberFor('ResponseStreamEvent', event.type);
      if (!name) throw new Error(`No ResponseStreamEvent member has type '${event.type}'`);
      assertValid(name, event);
      assertValid('ResponseStreamEvent', event);
    },
  };
}

let shared: SpecValidator | undefined;

/** A validator on the default spec, built once per process (compiling the spec takes a moment). */
export function openAISpecValidator(): SpecValidator {
  shared ??= createSpecValidator();
  return shared;
}
