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
  /** All text displays of a components v2 message together. */
  v2Text: 4000,
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

/**
 * Validates content, embeds and components of a message create/edit body; throws 50035. `existingFlags` are the
 * flags of the message an edit changes: a message sent with IS_COMPONENTS_V2 keeps it, so its edits follow v2's rules
 * whether or not they repeat the flag.
 */
export function checkMessageLimits(body: Obj, existingFlags = 0): void {
  const c = new FormErrorCollector();
  const flags = typeof body.flags === 'number' ? body.flags : 0;
  const wasV2 = (existingFlags & MessageFlags.IS_COMPONENTS_V2) !== 0;
  const v2 = wasV2 || (flags & MessageFlags.IS_COMPONENTS_V2) !== 0;
  if (wasV2 && typeof body.flags === 'number' && (flags & MessageFlags.IS_COMPONENTS_V2) === 0) {
    c.add(
      ['flags'],
      'MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG',
      'The IS_COMPONENTS_V2 flag cannot be removed once set',
    );
  }
  if (v2) {
    // With components v2, text lives in text displays: content and embeds must be absent, null or empty.
    for (const field of ['content', 'embeds'] as const) {
      const value = body[field];
      const given = typeof value === 'string' ? value !== '' : Array.isArray(value) && value.length > 0;
      if (given)
        c.add(
          [field],
          'MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2',
          `The '${field}' field cannot be used when using MessageFlags.IS_COMPONENTS_V2`,
        );
    }
    const text = textDisplayLength(body.components);
    if (text > LIMITS.v2Text) {
      c.add(
        ['components'],
        'MAX_TEXT_DISPLAY_CONTENT_LENGTH_EXCEEDED',
        `The total length of all text displays must be ${LIMITS.v2Text} or fewer characters.`,
      );
    }
  } else {
    maxLen(c, ['content'], body.content, LIMITS.content);
    checkEmbeds(c, body.embeds);
  }
  checkComponents(c, body.components, v2);
  c.throwIfAny();
}

const TEXT_DISPLAY = 10;

/** The characters of every text display in a component tree (containers and sections included). */
function textDisplayLength(components: unknown): number {
  let total = 0;
  const visit = (comp: unknown): void => {
    if (!isObj(comp)) return;
    if (comp.type === TEXT_DISPLAY && typeof comp.content === 'string') total += comp.content.length;
    if (Array.isArray(comp.components)) comp.components.forEach(visit);
  };
  if (Array.isArray(components)) components.forEach(visit);
  return total;
}

/**
 * What a reader sees as a message's text: its content, its embeds' titles and descriptions, and its text displays
 * (components v2), in order, one per line.
 */
export function visibleText(m: { content: string; embeds: unknown[]; components: unknown[] }): string {
  const parts: string[] = [];
  if (m.content) parts.push(m.content);
  for (const e of m.embeds) {
    if (!isObj(e)) continue;
    if (typeof e.title === 'string' && e.title) parts.push(e.title);
    if (typeof e.description === 'string' && e.description) parts.push(e.description);
  }
  const visit = (comp: unknown): void => {
    if (!isObj(comp)) return;
    if (comp.type === TEXT_DISPLAY && typeof comp.content === 'string') parts.push(comp.content);
    if (Array.isArray(comp.components)) comp.components.forEach(visit);
  };
  m.components.forEach(visit);
  return parts.join('\n');
}

/** The text mentions are parsed from: the content, and with components v2 the text displays too. */
export function mentionableText(m: { content: string; components: unknown[]; flags: number }): string {
  if ((m.flags & MessageFlags.IS_COMPONENTS_V2) === 0) return m.content;
  return visibleText({ content: m.content, embeds: [], components: m.components });
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
