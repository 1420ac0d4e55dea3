import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from './postgres.js';

test('throwaway PostgreSQL cluster answers queries', async (t) => {
  const server = await startPostgres(t);
  if (!server) return;
  const db = await server.createDatabase('helper_check');
  const rows = await server.query<{ v: number }>(db, 'SELECT 41 + 1 AS v');
  assert.equal(rows[0]?.v, 42);
});
