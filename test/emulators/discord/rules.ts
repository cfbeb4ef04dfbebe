// Discord's real limits on messages, stricter than its OpenAPI description.
import { FormErrorCollector } from './errors.ts';

export const LIMITS = {
  content: 2000,
  embeds: 10,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  embedFieldName: 256,
  embedFieldValue: 1024,
  embedFooter: 2048,
  embedAuthor: 256,
  embedTotal: 6000,
  actionRows: 5,
  rowButtons: 5,
  customId: 100,
  label: 80,
  v2Components: 40,
} as const;

export const MessageFlags = {
  HAS_THREAD: 1 << 5,
  EPHEMERAL: 1 << 6,
  LOADING: 1 << 7,
  SUPPRESS_NOTIFICATIONS: 1 << 12,
  IS_COMPONENTS_V2: 1 << 15,
} as const;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function maxLen(c: FormErrorCollector, path: (string | number)[], value: unknown, max: number): void {
  if (typeof value === 'string' && value.length > max) {
    c.add(path, 'BASE_TYPE_MAX_LENGTH', `Must be ${max} or fewer in length.`);
  }
}

/** Validates content, embeds and components of a message create/edit body; throws 50035. */
export function checkMessageLimits(body: Obj): void {
  const c = new FormErrorCollector();
  maxLen(c, ['content'], body.content, LIMITS.content);
  checkEmbeds(c, body.embeds);
  const flags = typeof body.flags === 'number' ? body.flags : 0;
  checkComponents(c, body.components, (flags & MessageFlags.IS_COMPONENTS_V2) !== 0);
  c.throwIfAny();
}

function checkEmbeds(c: FormErrorCollector, embeds: unknown): void {
  if (!Array.isArray(embeds)) return;
  if (embeds.length > LIMITS.embeds) {
    c.add(['embeds'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.embeds} or fewer in length.`);
  }
  let total = 0;
  embeds.forEach((e, i) => {
    if (!isObj(e)) return;
    maxLen(c, ['embeds', i, 'title'], e.title, LIMITS.embedTitle);
    maxLen(c, ['embeds', i, 'description'], e.description, LIMITS.embedDescription);
    total += str(e.title).length + str(e.description).length;
    if (isObj(e.footer)) {
      maxLen(c, ['embeds', i, 'footer', 'text'], e.footer.text, LIMITS.embedFooter);
      total += str(e.footer.text).length;
    }
    if (isObj(e.author)) {
      maxLen(c, ['embeds', i, 'author', 'name'], e.author.name, LIMITS.embedAuthor);
      total += str(e.author.name).length;
    }
    if (Array.isArray(e.fields)) {
      if (e.fields.length > LIMITS.embedFields) {
        c.add(
          ['embeds', i, 'fields'],
          'BASE_TYPE_MAX_LENGTH',
          `Must be ${LIMITS.embedFields} or fewer in length.`,
        );
      }
      e.fields.forEach((f: unknown, j: number) => {
        if (!isObj(f)) return;
        maxLen(c, ['embeds', i, 'fields', j, 'name'], f.name, LIMITS.embedFieldName);
        maxLen(c, ['embeds', i, 'fields', j, 'value'], f.value, LIMITS.embedFieldValue);
        total += str(f.name).length + str(f.value).length;
      });
    }
  });
  if (total > LIMITS.embedTotal) {
    c.add(['embeds'], 'MAX_EMBED_SIZE_EXCEEDED', `Embed size exceeds maximum size of ${LIMITS.embedTotal}`);
  }
}

const BUTTON = 2;
const ACTION_ROW = 1;
const SELECTS = new Set([3, 5, 6, 7, 8]);
const LINK_STYLE = 5;
const PREMIUM_STYLE = 6;

function checkComponents(c: FormErrorCollector, components: unknown, v2: boolean): void {
  if (!Array.isArray(components)) return;
  const seen = new Set<string>();
  let total = 0;
  const visit = (comp: unknown, path: (string | number)[]): void => {
    if (!isObj(comp)) return;
    total++;
    const type = comp.type;
    if (type === BUTTON || (typeof type === 'number' && SELECTS.has(type))) {
      checkInteractive(c, comp, path, seen);
    }
    if (Array.isArray(comp.components)) {
      if (type === ACTION_ROW) checkRow(c, comp.components, [...path, 'components']);
      comp.components.forEach((child, i) => {
        visit(child, [...path, 'components', i]);
      });
    }
    if (isObj(comp.accessory)) visit(comp.accessory, [...path, 'accessory']);
  };
  if (!v2 && components.length > LIMITS.actionRows) {
    c.add(['components'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.actionRows} or fewer in length.`);
  }
  components.forEach((comp, i) => {
    if (!v2 && isObj(comp) && comp.type !== ACTION_ROW) {
      c.add(['components', i, 'type'], 'UNION_TYPE_CHOICES', 'Value of field "type" must be one of (1,).');
    }
    visit(comp, ['components', i]);
  });
  if (v2 && total > LIMITS.v2Components) {
    c.add(['components'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.v2Components} or fewer in length.`);
  }
}

function checkRow(c: FormErrorCollector, children: unknown[], path: (string | number)[]): void {
  if (children.length === 0 || children.length > LIMITS.rowButtons) {
    c.add(path, 'BASE_TYPE_BAD_LENGTH', `Must be between 1 and ${LIMITS.rowButtons} in length.`);
    return;
  }
  const hasSelect = children.some((ch) => isObj(ch) && typeof ch.type === 'number' && SELECTS.has(ch.type));
  if (hasSelect && children.length > 1) {
    c.add(path, 'COMPONENT_LAYOUT_WIDTH_EXCEEDED', 'The specified component exceeds the maximum width');
  }
}

function checkInteractive(
  c: FormErrorCollector,
  comp: Obj,
  path: (string | number)[],
  seen: Set<string>,
): void {
  const isLink = comp.type === BUTTON && (comp.style === LINK_STYLE || comp.style === PREMIUM_STYLE);
  const customId = comp.custom_id;
  if (isLink) {
    if (comp.style === LINK_STYLE && typeof comp.url !== 'string') {
      c.add([...path, 'url'], 'BUTTON_COMPONENT_URL_REQUIRED', 'A url is required');
    }
    if (customId !== undefined && customId !== null) {
      c.add([...path, 'custom_id'], 'BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED', 'A custom id is not allowed');
    }
  } else if (typeof customId !== 'string') {
    c.add([...path, 'custom_id'], 'BUTTON_COMPONENT_CUSTOM_ID_REQUIRED', 'A custom id is required');
  } else if (customId.length < 1 || customId.length > LIMITS.customId) {
    c.add(
      [...path, 'custom_id'],
      'BASE_TYPE_BAD_LENGTH',
      `Must be between 1 and ${LIMITS.customId} in length.`,
    );
  } else if (seen.has(customId)) {
    c.add(
      [...path, 'custom_id'],
      'COMPONENT_CUSTOM_ID_DUPLICATED',
      'Component custom id cannot be duplicated',
    );
  } else {
    seen.add(customId);
  }
  if (comp.type === BUTTON) maxLen(c, [...path, 'label'], comp.label, LIMITS.label);
}

/** Finds a component by custom_id anywhere in a message's components. */
export function findComponent(components: unknown[], customId: string): Obj | undefined {
  for (const comp of components) {
    if (!isObj(comp)) continue;
    if (comp.custom_id === customId) return comp;
    if (Array.isArray(comp.components)) {
      const found = findComponent(comp.components, customId);
      if (found) return found;
    }
    if (isObj(comp.accessory) && comp.accessory.custom_id === customId) return comp.accessory;
  }
  return undefined;
}
