/**
 * What the core reports for the person who runs the bot; src/ops turns it into Prometheus metrics.
 *
 * Each call is a fact that just happened, never a question: an implementation must not throw or block (the core
 * does not wait on it and does not catch for it). Labels that reach a metric come from bounded sets (backends,
 * outcomes, error codes, the models that answered); `threadId` is for the implementation to aggregate, not a label.
 */
export interface Telemetry {
  /**
   * A turn ended (one reply to a thread's waiting messages). `queueWaitMs`: from the oldest answered message's
   * arrival to the turn's start; `firstTokenMs`: from the start to the model's first text (undefined: none came);
   * `totalMs`: from the start to the reply's end (shown whole for done and stopped, the failure known for failed).
   */
  turn(event: {
    backend: string;
    model: string;
    outcome: 'done' | 'stopped' | 'failed';
    queueWaitMs: number;
    firstTokenMs: number | undefined;
    totalMs: number;
  }): void;
  /**
   * Tokens a model was billed for. The kinds do not overlap: `input` is the uncached part of the prompt,
   * `cached_input` the part the provider served from its prompt cache, `output` what it generated.
   */
  tokens(event: { model: string; kind: 'input' | 'cached_input' | 'output'; count: number }): void;
  /**
   * A fork of `count` alternatives: its vote opened, every alternative failed, or it was cancelled while generating
   * (`count` 0 when not known: the fork of a process that stopped).
   */
  alternatives(event: { count: number; outcome: 'opened' | 'failed' | 'cancelled' }): void;
  /** A vote ended: closed on a winner (`reason`: quorum, close, moderator, deadline) or cancelled (why, as a code). */
  vote(event: { outcome: 'closed' | 'cancelled'; reason: string }): void;
  /** Something failed that a person saw as a failure; `kind` is the BotError code (upstream_rate_limited, ...). */
  error(event: { kind: string }): void;
  /** How many messages wait in a thread's inbox (the one being answered included), whenever the core looks. */
  queueDepth(event: { threadId: string; waiting: number }): void;
}

/** Reports nothing: the default for services built without telemetry (tests, tools). */
export const noTelemetry: Telemetry = {
  turn() {},
  tokens() {},
  alternatives() {},
  vote() {},
  error() {},
  queueDepth() {},
};
