/**
 * Runs tasks one at a time per key, in arrival order, within this process. The building block of the in-process
 * lock and of the store's read-modify-write; across processes the Redis lock takes its place.
 */
export interface KeyedMutex {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
}

export function createKeyedMutex(): KeyedMutex {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run(key, task) {
      const previous = tails.get(key) ?? Promise.resolve();
      const result = previous.then(task, task);
      const tail = result.catch(() => {});
      tails.set(key, tail);
      // Forget the key once nobody waits behind this task, so memory does not grow with the number of keys.
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
  };
}
