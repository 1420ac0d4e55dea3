/**
 * The original's positional form, `replay.sh MASTER_IP REDSHIFT_TARGET START END
 * [TABLE ... | --all-tables]`, through the real CLI with --plan (nothing is
 * started): what it maps to, and the one-line refusals of mixed forms.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { masterFromOriginal, rsurlFromOriginal } from '../../../driver/cli/original-form.js';
import { DEMO_CONFIG, runSpade } from '../../helpers/replay-env.js';

const dir = mkdtempSync(join(tmpdir(), 'spade-original-'));
const base = ['--edge', join(dir, 'edge'), '--output', join(dir, 'out'), '--config', DEMO_CONFIG, '--log-file', ''];
const noEnv = { EDGE_BUCKET: '', COMPACTER_BUCKET: '', BLUEPRINT_URL: '', SPADE_CONFIG: '', SPARK_HOME: '' };
const REDSHIFT = 'analytics.abc123.us-west-2.redshift.amazonaws.com:5439/spade';

test('MASTER_IP REDSHIFT_TARGET START END TABLE: --executor spark --master spark://MASTER_IP:7077 --rsurl', async () => {
  const res = await runSpade(
    ['replay', '10.0.0.5', REDSHIFT, '2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--plan', ...base],
    noEnv,
  );
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /window: 2023-11-05 10:00:00 \.\. 2023-11-05 11:00:00/);
  assert.match(res.stdout, /tables \(1\): login/);
  assert.match(res.stdout, /executor spark: one application on spark:\/\/10\.0\.0\.5:7077 \(client mode\)/);
  assert.match(
    res.stdout,
    /spark-submit: spark-submit --master spark:\/\/10\.0\.0\.5:7077 --deploy-mode client .*--conf spark\.task\.cpus=\d+ .*spark_job\.py \S+ spade$/m,
  );
  assert.match(res.stdout, /load: redshift:\/\/analytics\.abc123\.us-west-2\.redshift\.amazonaws\.com:5439\/spade /);
});

test('the original form with --all-tables and a host:port master, spark-submit from SPARK_HOME', async () => {
  const res = await runSpade(
    [
      'replay',
      '127.0.0.1:7100',
      'postgres://spade@127.0.0.1:5432/warehouse',
      '2023-11-05 10:00:00',
      '2023-11-05 11:00:00',
      '--all-tables',
      '--spark-cores',
      '3',
      '--plan',
      ...base,
    ],
    { ...noEnv, SPARK_HOME: '/opt/spark' },
  );
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /spark-submit: \/opt\/spark\/bin\/spark-submit --master spark:\/\/127\.0\.0\.1:7100 /);
  assert.match(res.stdout, /--conf spark\.executor\.cores=3 --conf spark\.task\.cpus=3 /);
  assert.match(res.stdout, /load: postgres:\/\/spade@127\.0\.0\.1:5432\/warehouse /);
});

const refusals: { name: string; args: string[]; message: RegExp }[] = [
  { name: 'with --master', args: ['--master', 'spark://x:7077'], message: /MASTER_IP given twice/ },
  { name: 'with --rsurl', args: ['--rsurl', 'postgres://h/db'], message: /REDSHIFT_TARGET given twice/ },
  { name: 'with another executor', args: ['--executor', 'workers'], message: /runs on Spark, not --executor workers/ },
];
for (const r of refusals) {
  test(`the original form ${r.name} is refused in one line`, async () => {
    const res = await runSpade(
      ['replay', '10.0.0.5', REDSHIFT, '2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', ...r.args, ...base],
      noEnv,
    );
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, r.message);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('the original form without END is refused', async () => {
  const res = await runSpade(['replay', '10.0.0.5', REDSHIFT, '2023-11-05 10:00:00', ...base], noEnv);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /needs MASTER_IP REDSHIFT_TARGET START END/);
});

test('--executor spark without a master says how to name one', async () => {
  const res = await runSpade(
    ['replay', '2023-11-05 10:00:00', '2023-11-05 11:00:00', 'login', '--executor', 'spark', '--plan', ...base],
    { ...noEnv, SPARK_MASTER: '' },
  );
  assert.equal(res.code, 1);
  assert.match(
    res.stderr,
    /--executor spark needs --master spark:\/\/HOST:7077, yarn or local\[N\] \(or SPARK_MASTER\)/,
  );
});

test('MASTER_IP forms and REDSHIFT_TARGET forms', () => {
  assert.equal(masterFromOriginal('10.1.2.3'), 'spark://10.1.2.3:7077');
  assert.equal(masterFromOriginal('master.internal:7177'), 'spark://master.internal:7177');
  assert.equal(masterFromOriginal('spark://a:1'), 'spark://a:1');
  assert.equal(masterFromOriginal('yarn'), 'yarn');
  assert.equal(masterFromOriginal('local[4]'), 'local[4]');
  assert.throws(() => masterFromOriginal('bad host!'), /MASTER_IP 'bad host!'/);
  assert.equal(rsurlFromOriginal('x.redshift.amazonaws.com'), 'redshift://x.redshift.amazonaws.com');
  assert.equal(rsurlFromOriginal('postgres://u@h/db'), 'postgres://u@h/db');
  assert.equal(rsurlFromOriginal('/var/lib/wh'), '/var/lib/wh');
});
