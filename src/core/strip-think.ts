// A reasoning block at the very start, closed or still streaming, plus the whitespace around it: the reply begins
// after it, so nothing it leaves behind should push the visible text down.
const LEADING_THINK = /^\s*(?:<think\b[^>]*>[\s\S]*?(?:<\/think\s*>|$)\s*)+/i;
const CLOSED_THINK = /<think\b[^>]*>[\s\S]*?<\/think\s*>/gi;
// Once every closed block is gone, any opening tag left is one whose closing tag has not streamed in yet.
const UNCLOSED_THINK = /<think\b[^>]*>[\s\S]*$/i;
// While streaming, the opening tag itself can arrive in pieces ("<thi"); showing that for one edit would flash
// markup at the reader. Only a reply that is nothing but such a piece is hidden, so prose ending in "<" survives.
const PARTIAL_OPENING_TAG = /^\s*<(?:t(?:h(?:i(?:n(?:k(?:\s[^>]*)?)?)?)?)?)?$/i;

/**
 * Removes a reasoning model's `<think>…</think>` blocks from its reply (case-insensitive, spanning lines, any number
 * of them), and also a trailing `<think>` whose closing tag has not arrived yet, so a reply can be shown while it
 * streams. Whitespace left at the start by a removed leading block is dropped; text that had no leading block keeps
 * its leading whitespace.
 */
export function stripThink(text: string): string {
  const stripped = text.replace(LEADING_THINK, '').replace(CLOSED_THINK, '').replace(UNCLOSED_THINK, '');
  return PARTIAL_OPENING_TAG.test(stripped) ? '' : stripped;
}

/** Strips think blocks from a reply as it streams in: `push` takes the next piece and returns the visible text. */
export function createThinkFilter(): { push(delta: string): string; readonly text: string } {
  let raw = '';
  let visible = '';
  return {
    push(delta) {
      raw += delta;
      visible = stripThink(raw);
      return visible;
    },
    get text() {
      return stripThink(raw);
    },
  };
}
