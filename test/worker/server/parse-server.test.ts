import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLineParser, parsedToJson } from '../../../worker/cli/parse.js';
import { isLoopbackHost } from '../../../worker/server/http.js';
import { startParseServer, type ParseServer } from '../../../worker/server/parse-server.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { parserOptions, sampleLine, samplePayload } from '../../helpers/parse-fixtures.js';

interface ParseObject {
  event: string;
  version: number;
  uuid: string;
  outcome: string;
  columns?: Record<string, string | null>;
  reason?: string;
}

/** What `spade parse` itself answers for these lines, as plain objects. */
async function expectedFor(lines: string[]): Promise<ParseObject[]> {
  const parse = await createLineParser(parserOptions);
  return (await parse(lines)).map((p) => JSON.parse(parsedToJson(p)) as ParseObject);
}

/** The sample line with only its payload replaced: the reference for a tracking request carrying it. */
function edgeLineWithData(data: string): string {
  return JSON.stringify({ ...(JSON.parse(sampleLine) as object), data });
}

/** Columns that come from the receive time or the client IP differ between an edge line and a live request. */
const TIME_OR_IP_COLUMNS = new Set(['time', 'ip', 'city', 'country', 'region', 'asn']);

function withoutTimeAndIp(columns: Record<string, string | null> | undefined): Record<string, string | null> {
  assert.ok(columns, 'event has columns');
  return Object.fromEntries(Object.entries(columns).filter(([k]) => !TIME_OR_IP_COLUMNS.has(k)));
}

async function postText(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'text/plain', ...headers } });
}

async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('parse server without token', () => {
  let server: ParseServer;
  const logged: string[] = [];

  before(async () => {
    server = await startParseServer({ ...parserOptions, port: 0, log: (l) => logged.push(l) });
  });
  after(() => server.close());

  test('listens on loopback and answers /healthz and the page', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const health = await fetch(server.url + 'healthz');
    assert.equal(health.status, 200);
    assert.equal((await health.text()).trim(), 'ok');
    const page = await fetch(server.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<textarea/);
    assert.match(html, />Parse</);
    assert.doesNotMatch(html, /(src|href)="?https?:/, 'the page fetches nothing from elsewhere');
  });

  test('POST /parse answers what spade parse gives for the fixture line', async () => {
    const res = await postText(server.url + 'parse', sampleLine + '\n');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /json/);
    const got = await json<ParseObject[]>(res);
    assert.deepEqual(got, await expectedFor([sampleLine]));
    assert.equal(got.length, 1);
    const [ev] = got;
    assert.equal(ev?.event, 'login');
    assert.equal(ev?.uuid, 'uuid1');
    assert.equal(ev?.columns?.time, '2013-10-17 11:05:55');
    assert.equal(ev?.columns?.ip, '10.1.40.26');
    assert.equal(ev?.columns?.platform, 'iPhone 5');
    assert.equal(ev?.columns?.player, 'iphone_t');
    assert.equal(ev?.columns?.device_id, null);
  });

  test('POST /parse takes several lines (CRLF, blank lines skipped) in order', async () => {
    const multi = readFileSync(fixturePath('spade/processor-sample_multi_logline.txt'), 'utf8').trim();
    const res = await postText(server.url + 'parse', `${sampleLine}\r\n\r\n${multi}\r\n`);
    assert.equal(res.status, 200);
    assert.deepEqual(await json<ParseObject[]>(res), await expectedFor([sampleLine, multi]));
  });

  test('GET /track?data= parses like the same payload in an edge line', async () => {
    logged.length = 0;
    const res = await fetch(`${server.url}track?data=${samplePayload}`, { headers: { 'User-Agent': 'tracker/1.0' } });
    assert.equal(res.status, 200);
    const got = await json<ParseObject[]>(res);
    const [want] = await expectedFor([sampleLine]);
    assert.equal(got.length, 1);
    const [ev] = got;
    assert.equal(ev?.event, want?.event);
    assert.equal(ev?.outcome, want?.outcome);
    assert.match(ev?.uuid ?? '', UUID_RE, 'a fresh uuid per request');
    assert.deepEqual(withoutTimeAndIp(ev?.columns), withoutTimeAndIp(want?.columns));
    assert.equal(ev?.columns?.ip, '127.0.0.1', 'client IP from the connection, ::ffff: stripped');
    assert.match(ev?.columns?.time ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.deepEqual(
      logged,
      got.map((p) => JSON.stringify(p)),
      'each result is logged',
    );
  });

  test('POST /track with a form body and with a raw payload body', async () => {
    const [want] = await expectedFor([sampleLine]);
    const form = await fetch(server.url + 'track', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `data=${samplePayload}&other=1`,
    });
    assert.equal(form.status, 200);
    const raw = await postText(server.url + 'track', samplePayload + '\n');
    assert.equal(raw.status, 200);
    for (const got of [await json<ParseObject[]>(form), await json<ParseObject[]>(raw)]) {
      assert.equal(got.length, 1);
      assert.equal(got[0]?.event, 'login');
      assert.equal(got[0]?.outcome, want?.outcome);
      assert.deepEqual(withoutTimeAndIp(got[0]?.columns), withoutTimeAndIp(want?.columns));
    }
  });

  test('the data value reaches the transform still escaped, as the edge stores it', async () => {
    // base64 of this JSON holds '+', '/' and '='; a client escapes them as %2B, %2F, %3D.
    const payload = Buffer.from('{"event":"login","properties":{"platform":">>>???","player":"a+b c"}}').toString(
      'base64',
    );
    assert.match(payload, /\+/);
    assert.match(payload, /\//);
    const escaped = encodeURIComponent(payload);
    const [want] = await expectedFor([edgeLineWithData(escaped)]);
    assert.equal(want?.columns?.platform, '>>>???');
    assert.equal(want?.columns?.player, 'a+b c');

    const viaGet = await json<ParseObject[]>(await fetch(`${server.url}track?data=${escaped}`));
    const viaForm = await json<ParseObject[]>(
      await fetch(server.url + 'track', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        body: 'data=' + escaped,
      }),
    );
    for (const got of [viaGet, viaForm]) {
      assert.equal(got[0]?.event, 'login');
      assert.deepEqual(withoutTimeAndIp(got[0]?.columns), withoutTimeAndIp(want?.columns));
    }
  });

  test('garbage gives malformed outcomes, never a crash', async () => {
    const garbage = Buffer.concat([
      Buffer.from('garbage\n{not json\n{"receivedAt": 5}\n1.2.3.4 [abc] data=%zz x\n'),
      Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x7b, 0x80]),
    ]);
    const res = await postText(server.url + 'parse', garbage);
    assert.equal(res.status, 200);
    const got = await json<ParseObject[]>(res);
    assert.equal(got.length, 6);
    for (const p of got) {
      assert.equal(p.outcome, 'malformed');
      assert.equal(typeof p.reason, 'string');
    }
    const badEscape = await fetch(`${server.url}track?data=%zz`);
    assert.equal(badEscape.status, 200);
    assert.equal((await json<ParseObject[]>(badEscape))[0]?.outcome, 'malformed');
    const notBase64 = await postText(server.url + 'track', '!!!!');
    assert.equal((await json<ParseObject[]>(notBase64))[0]?.outcome, 'malformed');
  });

  test('bad requests answer 400/404/405 with {error}', async () => {
    const cases: [Promise<Response>, number][] = [
      [postText(server.url + 'parse', ''), 400],
      [postText(server.url + 'parse', '\n  \n'), 400],
      [fetch(server.url + 'track'), 400],
      [fetch(server.url + 'track?data='), 400],
      [postText(server.url + 'track', ''), 400],
      [fetch(server.url + 'parse'), 405],
      [fetch(server.url + 'nope'), 404],
    ];
    for (const [pending, status] of cases) {
      const res = await pending;
      assert.equal(res.status, status, res.url);
      const body = await json<{ error?: unknown }>(res);
      assert.equal(typeof body.error, 'string');
    }
  });

  test('a body over 10 MiB is refused with 413 and the server keeps serving', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024 + 1, 0x61);
    const res = await postText(server.url + 'parse', big);
    assert.equal(res.status, 413);
    assert.match((await json<{ error: string }>(res)).error, /larger than/);
    const exact = await postText(server.url + 'parse', Buffer.alloc(10 * 1024 * 1024, 0x61));
    assert.equal(exact.status, 200, 'exactly the limit is accepted');
    assert.equal((await json<ParseObject[]>(exact))[0]?.outcome, 'malformed');
    assert.equal((await fetch(server.url + 'healthz')).status, 200);
  });

  test('broken HTTP gets a 400 and the server keeps serving', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write('THIS IS NOT HTTP\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.equal((await fetch(server.url + 'healthz')).status, 200);
  });
});

describe('parse server with a token', () => {
  let server: ParseServer;
  const token = 's3cret-tok+en';

  before(async () => {
    server = await startParseServer({ ...parserOptions, port: 0, token, log: () => {} });
  });
  after(() => server.close());

  test('the page and /healthz need no token', async () => {
    assert.equal((await fetch(server.url)).status, 200);
    assert.equal((await fetch(server.url + 'healthz')).status, 200);
  });

  test('a missing or wrong token is 401', async () => {
    const cases: Promise<Response>[] = [
      postText(server.url + 'parse', sampleLine),
      postText(server.url + 'parse', sampleLine, { Authorization: 'Bearer wrong' }),
      postText(server.url + 'parse', sampleLine, { Authorization: `Bearer ${token}x` }),
      postText(server.url + 'parse', sampleLine, { Authorization: `Basic ${token}` }),
      postText(server.url + 'parse?token=wrong', sampleLine),
      fetch(`${server.url}track?data=${samplePayload}`),
      fetch(`${server.url}track?data=${samplePayload}&token=${token.slice(0, -1)}`),
      fetch(server.url + 'nope'),
    ];
    for (const pending of cases) {
      const res = await pending;
      assert.equal(res.status, 401, res.url);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal(typeof (await json<{ error?: unknown }>(res)).error, 'string');
    }
  });

  test('the right token, as bearer or ?token=, is let through', async () => {
    const bearer = await postText(server.url + 'parse', sampleLine, { Authorization: `Bearer ${token}` });
    assert.equal(bearer.status, 200);
    assert.equal((await json<ParseObject[]>(bearer))[0]?.event, 'login');
    const query = await postText(`${server.url}parse?token=${encodeURIComponent(token)}`, sampleLine);
    assert.equal(query.status, 200);
    const track = await fetch(`${server.url}track?data=${samplePayload}&token=${encodeURIComponent(token)}`);
    assert.equal(track.status, 200);
    assert.equal((await json<ParseObject[]>(track))[0]?.event, 'login');
  });
});

test('a non-loopback bind without a token is refused', async () => {
  for (const host of ['0.0.0.0', '::', '192.0.2.1', 'example.com']) {
    await assert.rejects(startParseServer({ ...parserOptions, host, port: 0 }), /without a token.*--token/, host);
    await assert.rejects(startParseServer({ ...parserOptions, host, port: 0, token: '' }), /without a token/, host);
  }
});

test('loopback hosts are recognised', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});

/** A request to 127.0.0.1:`port` carrying `host` as its Host header (fetch cannot set it). */
function requestWithHost(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const method = path === '/parse' ? 'POST' : 'GET';
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { Host: host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? sampleLine + '\n' : undefined);
  });
}

test('DNS rebinding: a request whose Host is not this server is refused with 421', async (t) => {
  const server = await startParseServer({ ...parserOptions, port: 0, log: () => {} });
  t.after(() => server.close());
  const port = server.port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
    const res = await requestWithHost(port, host, '/parse');
    assert.equal(res.status, 200, `${host}: ${res.body}`);
    assert.equal((JSON.parse(res.body) as ParseObject[])[0]?.event, 'login', host);
  }
  for (const host of [
    `evil.example:${port}`,
    'evil.example',
    `127.0.0.1.evil.example:${port}`,
    `localhost:${port + 1}`,
  ]) {
    for (const path of ['/parse', '/', '/healthz']) {
      const res = await requestWithHost(port, host, path);
      assert.equal(res.status, 421, `${host}${path}: ${res.body}`);
      assert.match(res.body, /DNS rebinding/);
    }
  }
});

test('the Host check accepts the configured --host, and IP addresses on a wildcard bind', async (t) => {
  const token = 'host-check-token';
  const server = await startParseServer({ ...parserOptions, host: '0.0.0.0', port: 0, token, log: () => {} });
  t.after(() => server.close());
  const port = server.port;
  for (const host of [`0.0.0.0:${port}`, `127.0.0.1:${port}`, `10.1.2.3:${port}`, `[fd00::1]:${port}`]) {
    const res = await requestWithHost(port, host, '/healthz');
    assert.equal(res.status, 200, `${host}: ${res.body}`);
  }
  const res = await requestWithHost(port, `evil.example:${port}`, '/healthz');
  assert.equal(res.status, 421, res.body);
});
