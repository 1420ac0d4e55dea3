import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPartitions, type PartitionFile } from '../../driver/partition.js';
import { prng } from '../../scripts/generate/edge-logs.js';

const MiB = 1024 * 1024;

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function edgeFiles(count: number, rand: () => number, maxBytes: number): PartitionFile[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `20230601/edge-${i % 3}/${1685577600 + i}.node${i % 5}.0a1b2c3d.log.gz`,
    size: 1 + Math.floor(rand() * maxBytes),
  }));
}

function assertCoversExactlyOnce(files: PartitionFile[], parts: ReturnType<typeof planPartitions>): void {
  const planned = parts.flatMap((p) => p.files.map((f) => `${f.key} ${f.size}`)).sort();
  assert.deepEqual(planned, files.map((f) => `${f.key} ${f.size}`).sort());
  for (const p of parts)
    assert.equal(
      p.bytes,
      p.files.reduce((s, f) => s + f.size, 0),
    );
}

test('balanced by compressed bytes: max - min <= the largest file, and max/min < 1.1 for small files', () => {
  const rand = prng(1);
  const files = edgeFiles(5000, rand, 8 * MiB); // ~20 GiB in files of up to 8 MiB
  const target = 256 * MiB;
  const parts = planPartitions(files, { targetBytes: target });
  assertCoversExactlyOnce(files, parts);

  const total = files.reduce((s, f) => s + f.size, 0);
  assert.equal(parts.length, Math.ceil(total / target));
  const bytes = parts.map((p) => p.bytes);
  const max = Math.max(...bytes);
  const min = Math.min(...bytes);
  const largest = Math.max(...files.map((f) => f.size));
  assert.ok(max - min <= largest, `spread ${max - min} > largest file ${largest}`);
  assert.ok(max / min < 1.1, `max/min = ${max / min}`);
  assert.ok(max <= target + largest);
});

test('balanced with maxFiles: no partition over maxFiles, enough partitions for the files', () => {
  const rand = prng(2);
  const files = edgeFiles(1000, rand, 100_000);
  const parts = planPartitions(files, { targetBytes: 256 * MiB, maxFiles: 64 });
  assertCoversExactlyOnce(files, parts);
  assert.equal(parts.length, Math.ceil(1000 / 64));
  for (const p of parts) assert.ok(p.files.length <= 64);
  const counts = parts.map((p) => p.files.length);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `file counts ${counts.join(',')}`);
});

test('deterministic: the same files in any order give the same partitions', () => {
  const rand = prng(3);
  const files = edgeFiles(800, rand, 4 * MiB);
  // Equal sizes make ties that must be broken by key, not by input order.
  for (let i = 0; i < 200; i++) files[i].size = 1 * MiB;
  const opts = { targetBytes: 64 * MiB, maxFiles: 50 };
  const reference = planPartitions(files, opts);
  for (let round = 0; round < 5; round++) {
    assert.deepEqual(planPartitions(shuffle(files, rand), opts), reference);
  }
  assert.deepEqual(
    reference.map((p) => p.id),
    reference.map((_, i) => `p${String(i).padStart(5, '0')}`),
  );
  // Files sorted by key inside a partition; partitions ordered by first key.
  for (const p of reference) {
    assert.deepEqual(
      p.files.map((f) => f.key),
      p.files.map((f) => f.key).sort(),
    );
  }
  const firsts = reference.map((p) => p.files[0].key);
  assert.deepEqual(firsts, firsts.slice().sort());
});

test('files larger than the target get a partition of their own', () => {
  const files: PartitionFile[] = [
    { key: 'd/1.a', size: 300 },
    { key: 'd/2.a', size: 10 },
    { key: 'd/3.a', size: 101 },
    { key: 'd/4.a', size: 20 },
    { key: 'd/5.a', size: 100 }, // exactly the target: not "larger"
    { key: 'd/6.a', size: 30 },
  ];
  const parts = planPartitions(files, { targetBytes: 100 });
  assertCoversExactlyOnce(files, parts);
  const alone = (key: string) => parts.find((p) => p.files.some((f) => f.key === key));
  assert.deepEqual(alone('d/1.a')?.files, [{ key: 'd/1.a', size: 300 }]);
  assert.deepEqual(alone('d/3.a')?.files, [{ key: 'd/3.a', size: 101 }]);
  // The rest (160 bytes) fills two partitions: 100 alone, and 10+20+30.
  assert.deepEqual(
    parts.map((p) => [p.id, p.files.map((f) => f.key).join(','), p.bytes]),
    [
      ['p00000', 'd/1.a', 300],
      ['p00001', 'd/2.a,d/4.a,d/6.a', 60],
      ['p00002', 'd/3.a', 101],
      ['p00003', 'd/5.a', 100],
    ],
  );
});

test('no files, no partitions; bad options and duplicate keys are refused', () => {
  assert.deepEqual(planPartitions([], { targetBytes: 256 * MiB }), []);
  assert.throws(() => planPartitions([], { targetBytes: 0 }), /targetBytes must be positive/);
  assert.throws(() => planPartitions([], { targetBytes: 1, maxFiles: 0 }), /maxFiles must be at least 1/);
  assert.throws(
    () =>
      planPartitions(
        [
          { key: 'k', size: 1 },
          { key: 'k', size: 1 },
        ],
        { targetBytes: 10 },
      ),
    /edge file k is listed twice/,
  );
});

test('zero-byte files are spread too', () => {
  const files = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, size: 0 }));
  const parts = planPartitions(files, { targetBytes: 100, maxFiles: 4 });
  assertCoversExactlyOnce(files, parts);
  assert.deepEqual(
    parts.map((p) => p.files.length),
    [4, 3, 3],
  );
});
