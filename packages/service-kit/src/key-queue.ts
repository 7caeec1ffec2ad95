/**
 * An in-process queue per key (a promise chain): work on one key runs one at a time, in the order
 * it was asked for, whatever happened to the work before it. An optimisation of one process (a hot
 * stock account, one member's events), never the guarantee: across processes the claims and
 * ledgers keep things exact.
 */
export function createKeyQueue() {
  const tails = new Map<string, Promise<void>>();
  return {
    run<T>(key: string, fn: () => Promise<T>): Promise<T> {
      const result = (tails.get(key) ?? Promise.resolve()).then(fn);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
    /** Keys with work queued or running (tests: the map does not grow without bound). */
    size: () => tails.size,
  };
}
export type KeyQueue = ReturnType<typeof createKeyQueue>;
