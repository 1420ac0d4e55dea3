/**
 * The Kinesis SDK is loaded on first use only: every CLI start imports the
 * publishing code, and most runs publish nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

test('the Kinesis SDK is loaded only when a publisher is first opened', () => {
  // A child process: this test process may have loaded the SDK already. The SDK is
  // CommonJS, so whatever of it was loaded is in require.cache.
  const modules = [
    '../../../driver/replay.js',
    '../../../driver/cli/kinesis-flags.js',
    '../../../worker/process/processor.js',
    '../../../worker/output/kinesis-publish.js',
  ].map((m) => new URL(m, import.meta.url).href);
  const script = `
    import { createRequire } from 'node:module';
    for (const m of ${JSON.stringify(modules.slice(0, -1))}) await import(m);
    const { KinesisPublisher } = await import(${JSON.stringify(modules.at(-1))});
    const sdkLoaded = () =>
      Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@aws-sdk/client-kinesis'));
    const before = sdkLoaded();
    const error = await KinesisPublisher.open({
      targets: [{ stream: 's', tables: null }],
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      concurrency: 1,
    }).then(() => 'opened', (err) => err.message);
    console.log(JSON.stringify([before, sdkLoaded(), error]));
  `;
  // Nowhere to connect: opening fails (checking the stream), the SDK is loaded all the same.
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const [before, after, error] = JSON.parse(out) as [boolean, boolean, string];
  assert.equal(before, false, 'loaded by importing the CLI modules');
  assert.equal(after, true, 'loaded by opening a publisher');
  assert.match(error, /^Kinesis stream s \(http:\/\/127\.0\.0\.1:9\)/);
});
