/** In-memory state of the emulator: conversations and their items, responses, locks, knobs. */
import { CONTEXT_WINDOWS, CompactionSealer, DEFAULT_CONTEXT_WINDOW } from './context.ts';
import type { Latency } from './pacing.ts';
import { PromptCache } from './prompt-cache.ts';
import type { FailureSpec, Json, RecordedRequest, SeenContext } from './types.ts';

export interface ConversationState {
  id: string;
  createdAt: number;
  metadata: Record<string, string>;
  items: Json[];
  /** Id of the response currently running on this conversation, if any. */
  lockedBy: string | undefined;
}

export interface ResponseState {
  id: string;
  /** The response object as the API returns it (kept up to date while it runs). */
  object: Json;
  /**
   * The response this one continues (previous_response_id), or undefined; then `base` is the history it started
   * from (a conversation's items from their latest compaction item). A chain is read back through `parent` only as
   * far as its latest compaction item, so long chains cost what the model reads.
   */
  parent: ResponseState | undefined;
  base: Json[];
  /** What the model read. */
  seen: SeenContext | undefined;
  inputItems: Json[];
  /** store:false responses cannot be retrieved nor chained. */
  stored: boolean;
}

export interface PendingFailure extends FailureSpec {
  remaining: number;
}

export interface EmulatorConfig {
  apiKey: string;
  models: string[];
  /** Overrides the table for every model. */
  contextWindowTokens: number | undefined;
  contextWindows: Record<string, number>;
  latency: Latency;
  promptCaching: boolean;
}

export class EmulatorState {
  readonly config: EmulatorConfig;
  latency: Latency;
  chatRejectsMultipleChoices = false;
  conversations = new Map<string, ConversationState>();
  responses = new Map<string, ResponseState>();
  /** Every item ever stored (conversation items, response inputs and outputs), for `item_reference`. */
  items = new Map<string, Json>();
  failures: PendingFailure[] = [];
  requests: RecordedRequest[] = [];
  /** Aborts every running generation (on reset and close). */
  running = new Set<AbortController>();
  /** Seals and opens compaction items; kept across reset so items a test still holds stay readable. */
  readonly sealer = new CompactionSealer();
  readonly promptCache = new PromptCache();

  constructor(config: EmulatorConfig) {
    this.config = config;
    this.latency = { ...config.latency };
    this.promptCache.enabled = config.promptCaching;
  }

  reset(): void {
    for (const c of this.running) c.abort();
    this.running.clear();
    this.latency = { ...this.config.latency };
    this.chatRejectsMultipleChoices = false;
    this.promptCache.clear();
    this.promptCache.enabled = this.config.promptCaching;
    this.conversations.clear();
    this.responses.clear();
    this.items.clear();
    this.failures = [];
    this.requests.length = 0;
  }

  contextWindow(model: string): number {
    return (
      this.config.contextWindowTokens ??
      this.config.contextWindows[model] ??
      CONTEXT_WINDOWS[model] ??
      DEFAULT_CONTEXT_WINDOW
    );
  }

  remember(items: Json[]): void {
    for (const item of items) if (typeof item.id === 'string') this.items.set(item.id, item);
  }

  /** The first pending failure for this request (route template or literal path), counted down. */
  takeFailure(method: string, route: string, path: string): PendingFailure | undefined {
    const idx = this.failures.findIndex(
      (f) => f.route === undefined || f.route === route || f.route === `${method} ${path}`,
    );
    const f = this.failures[idx];
    if (!f) return undefined;
    f.remaining--;
    if (f.remaining <= 0) this.failures.splice(idx, 1);
    return f;
  }
}
