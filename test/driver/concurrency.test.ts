import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forEachLimited } from '../../driver/concurrency.js';

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

async function* stream(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

for (const [name, items] of [
  ['an array', () => Array.from({ length: 20 }, (_, i) => i)],
  ['an async iterable', () => stream(20)],
] as const) {
  test(`forEachLimited over ${name}: every item once, at most limit in flight`, async () => {
    const seen: number[] = [];
    let running = 0;
    let most = 0;
    await forEachLimited(items(), 3, async (i) => {
      most = Math.max(most, ++running);
      await tick();
      seen.push(i);
      running--;
    });
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(most, 3);
  });

  test(`forEachLimited over ${name}: after a failure no item starts, and the failure is thrown`, async () => {
    const started: number[] = [];
    await assert.rejects(
      forEachLimited(items(), 2, async (i) => {
        started.push(i);
        await tick();
        if (i === 3) throw new Error('item 3 failed');
      }),
      /item 3 failed/,
    );
    // Long enough for a lane that went on to start every other item.
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Items 0-3 and at most the one the other lane took before 3 failed.
    assert.ok(started.length <= 5, `started ${started.join(',')}`);
  });
}
