/**
 * Async work over a list or a stream with a bound on how much is in flight (table
 * loads, partitions of the local executor, listing prefixes).
 */

/**
 * Runs `fn` over items (an array, or pulled from an async iterable) with at most
 * `limit` in flight. The first failure is thrown once the calls in flight have
 * ended, and no item is started after it.
 */
export async function forEachLimited<T>(
  items: readonly T[] | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const next = nextItem(items);
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed) {
      const r = await next();
      if (r.done) return;
      try {
        await fn(r.value);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const lanes = Array.isArray(items) ? Math.min(limit, items.length) : limit;
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
}

/** One `next` shared by every lane: each item is taken once. */
function nextItem<T>(items: readonly T[] | AsyncIterable<T>): () => Promise<IteratorResult<T, undefined>> {
  if (Array.isArray(items)) {
    const list = items as readonly T[];
    let i = 0;
    return async () => (i < list.length ? { done: false, value: list[i++] as T } : { done: true, value: undefined });
  }
  const it = (items as AsyncIterable<T>)[Symbol.asyncIterator]();
  return async () => {
    const r = await it.next();
    return r.done ? { done: true, value: undefined } : r;
  };
}
