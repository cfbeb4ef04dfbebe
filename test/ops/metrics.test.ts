import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.ts';
import { sample } from './scrape.ts';

describe('the metrics adapter', () => {
  it('counts turns by backend and outcome, with their queue wait, first token and duration', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const turn = { backend: 'chat', model: 'm', queueWaitMs: 200, totalMs: 3000 };
    metrics.telemetry.turn({ ...turn, outcome: 'done', firstTokenMs: 400 });
    metrics.telemetry.turn({ ...turn, outcome: 'done', firstTokenMs: 600 });
    metrics.telemetry.turn({ ...turn, outcome: 'failed', firstTokenMs: undefined, totalMs: 50 });
    const text = await metrics.text();

    expect(sample(text, 'threadfork_turns_total', { backend: 'chat', outcome: 'done' })).toBe(2);
    expect(sample(text, 'threadfork_turns_total', { backend: 'chat', outcome: 'failed' })).toBe(1);
    expect(sample(text, 'threadfork_turn_first_token_seconds_count', { outcome: 'done' })).toBe(2);
    expect(sample(text, 'threadfork_turn_first_token_seconds_sum', { outcome: 'done' })).toBeCloseTo(1.0);
    // A turn that got no text has no time to first token.
    expect(sample(text, 'threadfork_turn_first_token_seconds_count', { outcome: 'failed' })).toBeUndefined();
    expect(sample(text, 'threadfork_turn_duration_seconds_sum', { outcome: 'done' })).toBeCloseTo(6);
    expect(sample(text, 'threadfork_turn_duration_seconds_bucket', { outcome: 'failed', le: '0.25' })).toBe(
      1,
    );
    expect(sample(text, 'threadfork_turn_queue_wait_seconds_count', { backend: 'chat' })).toBe(3);
    expect(sample(text, 'threadfork_turn_queue_wait_seconds_bucket', { outcome: 'done', le: '0.25' })).toBe(
      2,
    );
  });

  it('counts tokens by model and kind, alternatives and forks by outcome, votes and errors', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { telemetry } = metrics;
    telemetry.tokens({ model: 'gpt-4.1-mini', kind: 'input', count: 100 });
    telemetry.tokens({ model: 'gpt-4.1-mini', kind: 'input', count: 20 });
    telemetry.tokens({ model: 'gpt-4.1-mini', kind: 'cached_input', count: 64 });
    telemetry.tokens({ model: 'gpt-4.1-mini', kind: 'output', count: 7 });
    telemetry.tokens({ model: 'o3', kind: 'output', count: 5 });
    telemetry.alternatives({ count: 3, outcome: 'opened' });
    telemetry.alternatives({ count: 2, outcome: 'opened' });
    telemetry.alternatives({ count: 2, outcome: 'failed' });
    telemetry.vote({ outcome: 'closed', reason: 'quorum' });
    telemetry.vote({ outcome: 'cancelled', reason: 'moderator' });
    telemetry.error({ kind: 'upstream_rate_limited' });
    telemetry.error({ kind: 'upstream_rate_limited' });
    telemetry.error({ kind: 'a kind with "quotes" and spaces' });
    const text = await metrics.text();

    expect(sample(text, 'threadfork_tokens_total', { model: 'gpt-4.1-mini', kind: 'input' })).toBe(120);
    expect(sample(text, 'threadfork_tokens_total', { model: 'gpt-4.1-mini', kind: 'cached_input' })).toBe(64);
    expect(sample(text, 'threadfork_tokens_total', { model: 'gpt-4.1-mini', kind: 'output' })).toBe(7);
    expect(sample(text, 'threadfork_tokens_total', { model: 'o3', kind: 'output' })).toBe(5);
    expect(sample(text, 'threadfork_alternatives_requests_total', { outcome: 'opened' })).toBe(2);
    expect(sample(text, 'threadfork_alternatives_total', { outcome: 'opened' })).toBe(5);
    expect(sample(text, 'threadfork_alternatives_total', { outcome: 'failed' })).toBe(2);
    expect(sample(text, 'threadfork_votes_total', { outcome: 'closed', reason: 'quorum' })).toBe(1);
    expect(sample(text, 'threadfork_votes_total', { outcome: 'cancelled', reason: 'moderator' })).toBe(1);
    expect(sample(text, 'threadfork_errors_total', { kind: 'upstream_rate_limited' })).toBe(2);
    // A label value is kept short and plain, whatever the caller passed.
    expect(sample(text, 'threadfork_errors_total', { kind: 'a_kind_with__quotes__and_spaces' })).toBe(1);
  });

  it('reports the queue as the sum of the depths last seen per thread, and forgets threads that emptied', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { telemetry } = metrics;
    telemetry.queueDepth({ threadId: 't1', waiting: 3 });
    telemetry.queueDepth({ threadId: 't2', waiting: 1 });
    telemetry.queueDepth({ threadId: 't1', waiting: 2 });
    let text = await metrics.text();
    expect(sample(text, 'threadfork_queue_waiting_messages')).toBe(3);
    expect(sample(text, 'threadfork_queue_threads_waiting')).toBe(2);
    telemetry.queueDepth({ threadId: 't1', waiting: 0 });
    telemetry.queueDepth({ threadId: 't2', waiting: 0 });
    text = await metrics.text();
    expect(sample(text, 'threadfork_queue_waiting_messages')).toBe(0);
    expect(sample(text, 'threadfork_queue_threads_waiting')).toBe(0);
  });

  it('keeps each registry to itself, with the process metrics when asked', async () => {
    const one = createMetrics();
    const two = createMetrics();
    one.telemetry.error({ kind: 'x' });
    expect(sample(await one.text(), 'threadfork_errors_total', { kind: 'x' })).toBe(1);
    expect(sample(await two.text(), 'threadfork_errors_total', { kind: 'x' })).toBeUndefined();
    expect(sample(await two.text(), 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(
      sample(await createMetrics({ defaultMetrics: false }).text(), 'process_cpu_user_seconds_total'),
    ).toBe(undefined);
    const json = await one.json();
    expect(json.find((m) => m.name === 'threadfork_errors_total')?.values).toEqual([
      { value: 1, labels: { kind: 'x' } },
    ]);
  });
});
