import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { UserIdMapper, type UserIdMapperOptions } from '../../../worker/transform/mapping.js';

type Handler = (login: string, req: IncomingMessage, res: ServerResponse) => void;

/** A user service on 127.0.0.1 and a random port; `logins` records every request. */
async function userService(handler: Handler): Promise<{ server: Server; url: string; logins: string[] }> {
  const logins: string[] = [];
  const server = createServer((req, res) => {
    const login = new URL(req.url!, 'http://x').searchParams.get('login') ?? '';
    logins.push(login);
    handler(login, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/users?login={login}`, logins };
}

function mapperFor(url: string, extra: Partial<UserIdMapperOptions> = {}): UserIdMapper {
  return new UserIdMapper({
    urlTemplate: url,
    jsonPath: 'data.0.id',
    timeoutMs: 5000,
    maxConcurrent: 4,
    cacheSize: 100,
    ...extra,
  });
}

const json = (res: ServerResponse, body: string) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);

describe('UserIdMapper', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) s.closeAllConnections();
    return Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  it('misses, fetches, then hits the cache', async () => {
    const svc = await userService((login, _req, res) => json(res, `{"data":[{"id":${login.length * 1000}}]}`));
    servers.push(svc.server);
    const mapper = mapperFor(svc.url);
    assert.equal(mapper.lookupSync('alice'), undefined);
    assert.equal(await mapper.lookup('alice'), '5000');
    assert.equal(mapper.lookupSync('alice'), '5000');
    assert.equal(await mapper.lookup('alice'), '5000');
    assert.deepEqual(svc.logins, ['alice']);
    assert.equal(mapper.stats.fetches, 1);
  });

  it('URL-encodes the login', async () => {
    const svc = await userService((_login, _req, res) => json(res, '{"data":[{"id":"7"}]}'));
    servers.push(svc.server);
    const mapper = mapperFor(svc.url);
    const login = 'a b&c=d/é?#+';
    assert.equal(await mapper.lookup(login), '7');
    assert.deepEqual(svc.logins, [login]);
  });

  it('a login that is a dot segment in a path template is not found, without a request', async () => {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url!);
      json(res, '{"data":[{"id":"1"}]}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const mapper = mapperFor(`http://127.0.0.1:${port}/v1/users/{login}/profile`);
    assert.equal(await mapper.lookup('..'), null);
    assert.equal(await mapper.lookup('.'), null);
    assert.equal(await mapper.lookup('...'), '1');
    assert.deepEqual(paths, ['/v1/users/.../profile']);
    // In a query a dot is just a value.
    const svc = await userService((_login, _req, res) => json(res, '{"data":[{"id":"2"}]}'));
    servers.push(svc.server);
    assert.equal(await mapperFor(svc.url).lookup('..'), '2');
    assert.deepEqual(svc.logins, ['..']);
  });

  it('keeps ids exact and accepts ids as strings; other values are not found', async () => {
    const bodies: Record<string, string> = {
      big: '{"data":[{"id":9223372036854775807}]}',
      text: '{"data":[{"id":"9007199254740993"}]}',
      toobig: '{"data":[{"id":9223372036854775808}]}',
      fraction: '{"data":[{"id":1.5}]}',
      empty: '{"data":[]}',
      notjson: 'oops',
      nested: '{"data":{"0":{"id":12}}}',
    };
    const svc = await userService((login, _req, res) => json(res, bodies[login]!));
    servers.push(svc.server);
    const mapper = mapperFor(svc.url);
    assert.equal(await mapper.lookup('big'), '9223372036854775807');
    assert.equal(await mapper.lookup('text'), '9007199254740993');
    assert.equal(await mapper.lookup('toobig'), null);
    assert.equal(await mapper.lookup('fraction'), null);
    assert.equal(await mapper.lookup('empty'), null);
    assert.equal(await mapper.lookup('notjson'), null);
    assert.equal(await mapper.lookup('nested'), '12');
    assert.equal(mapper.stats.notFound, 4);
  });

  it('a 404 or 500 is a failure, remembered only for its TTL', async () => {
    let status = 404;
    const svc = await userService((_login, _req, res) => {
      if (status === 200) json(res, '{"data":[{"id":5}]}');
      else res.writeHead(status).end();
    });
    servers.push(svc.server);
    const mapper = mapperFor(svc.url, { notFoundTtlMs: 60_000, failureTtlMs: 0 });
    assert.equal(await mapper.lookup('gone'), null);
    assert.equal(mapper.lookupSync('gone'), null, 'known missing');
    assert.equal(await mapper.lookup('gone'), null);
    assert.equal(svc.logins.length, 1, 'not fetched again within the TTL');

    status = 500;
    assert.equal(await mapper.lookup('flaky'), null);
    status = 200;
    // failureTtlMs 0: the failure is already stale, so the next lookup fetches again.
    assert.equal(mapper.lookupSync('flaky'), undefined);
    assert.equal(await mapper.lookup('flaky'), '5');
    assert.deepEqual(svc.logins, ['gone', 'flaky', 'flaky']);
  });

  it('a request slower than the timeout is a failure', async () => {
    const held: ServerResponse[] = [];
    const svc = await userService((_login, _req, res) => held.push(res)); // never answers
    servers.push(svc.server);
    const mapper = mapperFor(svc.url, { timeoutMs: 50 });
    assert.equal(await mapper.lookup('slow'), null);
    assert.equal(mapper.stats.failures, 1);
    for (const res of held) res.destroy();
  });

  it('an unreachable service is a failure', async () => {
    const svc = await userService(() => undefined);
    const url = svc.url;
    await new Promise<void>((resolve) => svc.server.close(() => resolve()));
    const mapper = mapperFor(url);
    assert.equal(await mapper.lookup('anyone'), null);
    assert.equal(mapper.stats.failures, 1);
  });

  it('shares one request among concurrent lookups of the same login', async () => {
    const held: ServerResponse[] = [];
    const svc = await userService((_login, _req, res) => held.push(res));
    servers.push(svc.server);
    const mapper = mapperFor(svc.url);
    const lookups = Array.from({ length: 5 }, () => mapper.lookup('same'));
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    json(held[0]!, '{"data":[{"id":77}]}');
    assert.deepEqual(await Promise.all(lookups), ['77', '77', '77', '77', '77']);
    assert.deepEqual(svc.logins, ['same']);
  });

  it('never has more than maxConcurrent requests in flight', async () => {
    const maxConcurrent = 3;
    const total = 20;
    const pending: [string, ServerResponse][] = [];
    let served = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const svc = await userService((login, _req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      pending.push([login, res]);
      // Answer a batch only once the client has filled every slot (or nothing else can come),
      // so a client exceeding the bound would be seen here.
      if (pending.length === maxConcurrent || served + pending.length === total) {
        for (const [l, r] of pending.splice(0)) {
          inFlight--;
          served++;
          json(r, `{"data":[{"id":${l.slice(1)}}]}`);
        }
      }
    });
    servers.push(svc.server);
    const mapper = mapperFor(svc.url, { maxConcurrent });
    const logins = Array.from({ length: total }, (_, i) => `u${i + 1}`);
    const ids = await Promise.all(logins.map((l) => mapper.lookup(l)));
    assert.deepEqual(
      ids,
      logins.map((l) => l.slice(1)),
    );
    assert.equal(maxInFlight, maxConcurrent);
    assert.equal(svc.logins.length, total);
  });

  it('rejects bad options', () => {
    assert.throws(() => mapperFor('ftp://host/{login}'), /http\(s\) and contain \{login\}/);
    assert.throws(() => mapperFor('http://host/users'), /contain \{login\}/);
    assert.throws(() => mapperFor('http://host/{login}', { maxConcurrent: 0 }), /maxConcurrent/);
    assert.throws(() => mapperFor('http://host/{login}', { timeoutMs: 1.5 }), /timeoutMs/);
  });
});
