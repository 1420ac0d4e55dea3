/**
 * The parse page in a real headless Chromium: open `/?line=…` (the page parses
 * it on load), let `--virtual-time-budget` run the page until its fetch is
 * answered, and read the rendered DOM from `--dump-dom`. No npm dependency.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLineParser, parsedToJson } from '../../../worker/cli/parse.js';
import { startParseServer, type ParseServer } from '../../../worker/server/parse-server.js';
import { dumpDom, requireChromium } from '../../helpers/chromium.js';
import { parserOptions, sampleLine, samplePayload } from '../../helpers/parse-fixtures.js';

interface RenderedEvent {
  name: string;
  outcome: string;
  /** Column → cell text; NULL cells as null, empty strings as ''. */
  columns: Record<string, string | null>;
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&nbsp;/g, '\u00a0')
    .replace(/&amp;/g, '&');
}

/** Reads the events back out of the page's rendering (parse-page.ts markup). */
function renderedEvents(dom: string): RenderedEvent[] {
  const events: RenderedEvent[] = [];
  for (const section of dom.split('<section class="event"').slice(1)) {
    const name = /<span class="name">([^<]*)<\/span>/.exec(section)?.[1];
    const outcome = /<span class="outcome [^"]*">([^<]*)<\/span>/.exec(section)?.[1];
    assert.ok(name !== undefined && outcome !== undefined, `event header in ${section.slice(0, 300)}`);
    const columns: Record<string, string | null> = {};
    const row = /<tr data-column="([^"]*)"><th>[^<]*<\/th><td class="(value|null|empty)">([^<]*)<\/td><\/tr>/g;
    for (let m = row.exec(section); m !== null; m = row.exec(section)) {
      const [, column, kind, text] = m as unknown as [string, string, string, string];
      columns[unescapeHtml(column)] = kind === 'null' ? null : kind === 'empty' ? '' : unescapeHtml(text);
    }
    events.push({ name: unescapeHtml(name), outcome, columns });
  }
  return events;
}

function statusOf(dom: string): { state: string; text: string } {
  const m = /<span id="status" data-state="([^"]*)">([^<]*)<\/span>/.exec(dom);
  assert.ok(m, 'status element present');
  return { state: m[1] as string, text: unescapeHtml(m[2] as string) };
}

describe('parse page in headless Chromium', () => {
  let server: ParseServer;
  let tokenServer: ParseServer;
  const token = 'page-token';

  before(async () => {
    server = await startParseServer({ ...parserOptions, port: 0, log: () => {} });
    tokenServer = await startParseServer({ ...parserOptions, port: 0, token, log: () => {} });
  });
  after(async () => {
    await server.close();
    await tokenServer.close();
  });

  test('an edge line given as ?line= is parsed on load and shown column by column', async (t) => {
    if (!requireChromium(t)) return;
    const parse = await createLineParser(parserOptions);
    const [expected] = (await parse([sampleLine])).map(
      (p) => JSON.parse(parsedToJson(p)) as { event: string; outcome: string; columns: Record<string, string | null> },
    );
    assert.ok(expected);

    const dom = await dumpDom(`${server.url}?line=${encodeURIComponent(sampleLine)}`);
    assert.equal(statusOf(dom).state, 'done', `status: ${statusOf(dom).text}`);
    assert.equal(statusOf(dom).text, '1 event');
    const events = renderedEvents(dom);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.name, 'login');
    assert.equal(events[0]?.outcome, expected.outcome);
    assert.deepEqual(events[0]?.columns, expected.columns);
    // A few values spelled out, so the test says what a person sees.
    assert.equal(events[0]?.columns.time, '2013-10-17 11:05:55');
    assert.equal(events[0]?.columns.platform, 'iPhone 5');
    assert.equal(events[0]?.columns.device_id, null, 'a NULL column is shown as NULL');
    assert.match(dom, /uuid uuid1/);
  });

  test('a bare payload is wrapped into an edge line from 127.0.0.1', async (t) => {
    if (!requireChromium(t)) return;
    const dom = await dumpDom(`${server.url}?line=${encodeURIComponent(samplePayload)}`);
    assert.equal(statusOf(dom).state, 'done', `status: ${statusOf(dom).text}`);
    const events = renderedEvents(dom);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.name, 'login');
    assert.equal(events[0]?.columns.ip, '127.0.0.1');
    assert.equal(events[0]?.columns.player, 'iphone_t');
  });

  test('garbage is shown as malformed, and names are text, never HTML', async (t) => {
    if (!requireChromium(t)) return;
    const htmlName = '<img src=x onerror=alert(1)>';
    const payload = Buffer.from(JSON.stringify({ event: htmlName, properties: {} })).toString('base64');
    const edgeLine = JSON.stringify({ ...(JSON.parse(sampleLine) as object), data: payload });
    const text = `${edgeLine}\n{"receivedAt": <b>oops</b>`;
    const dom = await dumpDom(`${server.url}?line=${encodeURIComponent(text)}`);
    assert.equal(statusOf(dom).state, 'done', `status: ${statusOf(dom).text}`);
    const events = renderedEvents(dom);
    assert.deepEqual(
      events.map((e) => [e.name, e.outcome]),
      [
        [htmlName, 'untracked'],
        ['(malformed line)', 'malformed'],
      ],
    );
    assert.doesNotMatch(dom, /<img/, 'no element was made from the data');
  });

  test('the page sends the token it was opened with', async (t) => {
    if (!requireChromium(t)) return;
    const line = encodeURIComponent(sampleLine);
    const withToken = await dumpDom(`${tokenServer.url}?token=${token}&line=${line}`);
    assert.equal(statusOf(withToken).state, 'done', `status: ${statusOf(withToken).text}`);
    assert.equal(renderedEvents(withToken)[0]?.name, 'login');

    const without = await dumpDom(`${tokenServer.url}?line=${line}`);
    assert.equal(statusOf(without).state, 'error');
    assert.match(statusOf(without).text, /^401: /);
    assert.equal(renderedEvents(without).length, 0);
  });
});
