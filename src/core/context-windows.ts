/**
 * How many tokens each model reads at once, and the thresholds that follow from it: a long thread is condensed
 * when its context passes a share of the model's window, not at one number for every model.
 */

/**
 * Context windows of known models, in tokens (from OpenAI's model pages). A name matches an entry when it equals it or
 * starts with it followed by "-" (a dated snapshot: gpt-4o-2024-08-06); the longest matching entry wins.
 */
export const KNOWN_CONTEXT_WINDOWS: ReadonlyMap<string, number> = new Map([
  ['gpt-5', 400_000],
  ['gpt-5-chat-latest', 128_000],
  ['gpt-4.1', 1_047_576],
  ['gpt-4o', 128_000],
  ['gpt-4-turbo', 128_000],
  ['gpt-4', 8_192],
  ['gpt-3.5-turbo', 16_385],
  ['o1', 200_000],
  ['o3', 200_000],
  ['o4-mini', 200_000],
  // The OpenAI emulator's test model (test/emulators/openai): small, so tests reach the window in a few turns.
  ['tf-test-8k', 8_192],
]);

export interface ContextPolicy {
  /** Tokens the model reads at once. */
  windowOf(model: string): number;
  /** Tokens of context past which the oldest part is condensed (or the provider compacts). */
  thresholdOf(model: string): number;
  /** Tokens of the latest turns kept verbatim when condensing (the rest goes into the summary). */
  keepOf(model: string): number;
  /** The most tokens a summary may take. */
  summaryOf(model: string): number;
  /** `auto`: the provider's compaction where the backend has it, else a summary; `summary`: always a summary; `off`. */
  mode: ContextMode;
}

export const contextModes = ['auto', 'summary', 'off'] as const;
export type ContextMode = (typeof contextModes)[number];

export interface ContextSettings {
  mode: ContextMode;
  /** Model name -> window, over the known ones (CONTEXT_WINDOWS). */
  windows: ReadonlyMap<string, number>;
  /** Window of a model neither table knows (a local server's model). */
  defaultWindow: number;
  /** Share of the window past which the context is condensed. */
  thresholdShare: number;
  /** Share of the window kept verbatim (the latest turns) when condensing. */
  keepShare: number;
}

export const DEFAULT_CONTEXT_SETTINGS: ContextSettings = {
  mode: 'auto',
  windows: new Map(),
  defaultWindow: 8_192,
  thresholdShare: 0.6,
  keepShare: 0.3,
};

/** The window of `model`: an override first, then the known table, then the default. */
export function contextWindowOf(
  model: string,
  overrides: ReadonlyMap<string, number>,
  fallback: number,
): number {
  const exact = overrides.get(model);
  if (exact !== undefined) return exact;
  let best: { name: string; tokens: number } | undefined;
  for (const table of [overrides, KNOWN_CONTEXT_WINDOWS]) {
    for (const [name, tokens] of table) {
      const matches = model === name || model.startsWith(`${name}-`);
      if (matches && (!best || name.length > best.name.length)) best = { name, tokens };
    }
    if (best) return best.tokens;
  }
  return fallback;
}

export function createContextPolicy(settings: Partial<ContextSettings> = {}): ContextPolicy {
  const s = { ...DEFAULT_CONTEXT_SETTINGS, ...settings };
  const windowOf = (model: string) => contextWindowOf(model, s.windows, s.defaultWindow);
  return {
    mode: s.mode,
    windowOf,
    thresholdOf: (model) => Math.floor(windowOf(model) * s.thresholdShare),
    keepOf: (model) => Math.floor(windowOf(model) * s.keepShare),
    // A summary smaller than what is kept verbatim, so condensing always makes the context smaller.
    summaryOf: (model) => Math.max(64, Math.floor(windowOf(model) * Math.min(0.15, s.keepShare / 2))),
  };
}
