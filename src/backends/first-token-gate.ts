import type { Variant } from '../core/ports.ts';

/**
 * Runs a fork's alternatives so that they share the provider's prompt cache: the first starts at once, the others
 * when it has streamed its first token (or ended, or failed). OpenAI caches a prompt once a request has processed
 * it up to its first output token, so requests started together all pay the shared history in full, while the later
 * ones read it from the cache (billed at the cached rate, and with a shorter wait for their own first token). The
 * wait costs the others about one time-to-first-token of the first.
 *
 * For the backends that send one request per alternative (responses, conversations); the chat backend asks for all
 * alternatives of the same options in one request (`n`), which pays the prompt once already.
 */
export function startAfterFirstToken<T>(
  variants: readonly Variant[],
  run: (variant: Variant) => Promise<T>,
): Promise<PromiseSettledResult<T>[]> {
  const [first, ...others] = variants;
  if (!first || others.length === 0) return Promise.allSettled(variants.map(run));
  let open!: () => void;
  const firstToken = new Promise<void>((resolve) => {
    open = resolve;
  });
  const leader = run({
    ...first,
    onDelta(delta) {
      open();
      first.onDelta(delta);
    },
  }).finally(open);
  return Promise.allSettled([leader, ...others.map((variant) => firstToken.then(() => run(variant)))]);
}
