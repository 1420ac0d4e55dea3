import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PREPARED_CACHE_SIZE, prepareTransform } from '../../../worker/transform/setup.js';
import { DEMO_CONFIG } from '../../helpers/replay-env.js';

test('prepared transforms are shared per settings, and only the most recent few are kept', async () => {
  const configText = readFileSync(DEMO_CONFIG, 'utf8');
  // Same schemas, different settings text: what a reloaded config looks like to the cache.
  const settings = (n: number) => ({ configText: configText + ' '.repeat(n), configSource: `config-${n}` });
  const first = await prepareTransform(settings(0));
  assert.equal(await prepareTransform(settings(0)), first, 'same settings, same prepared transform');
  const later = [];
  for (let n = 1; n <= PREPARED_CACHE_SIZE; n++) later.push(await prepareTransform(settings(n)));
  // The first one was pushed out: asking again builds a new one.
  assert.notEqual(await prepareTransform(settings(0)), first);
  // The most recent is still shared.
  assert.equal(await prepareTransform(settings(PREPARED_CACHE_SIZE)), later[later.length - 1]);
  // A failed setup is not remembered.
  await assert.rejects(prepareTransform({ configText: '[', configSource: 'broken' }));
  await assert.rejects(prepareTransform({ configText: '[', configSource: 'broken' }));
});
