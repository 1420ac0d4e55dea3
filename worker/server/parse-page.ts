/**
 * The parse server's page (`GET /`): paste an edge line or a bare payload, see
 * each event's outcome and columns. Self-contained (inline CSS and JS, nothing
 * fetched but `POST /parse` on the same server) so it works offline.
 *
 * Query parameters: `token` is sent as the bearer token; `line` pre-fills the
 * text and parses it on load (links to a parse, and the headless-browser test).
 * `#status[data-state]` ends as `done` or `error` once a parse finished.
 *
 * Everything from the server or the user is inserted with textContent, never
 * as HTML.
 */
export const PARSE_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spade parse</title>
<style>
  :root { color-scheme: light dark; --muted: #777; --line: #8884; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem auto; max-width: 60rem; padding: 0 1rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  p.hint { color: var(--muted); margin: 0 0 .75rem; }
  textarea { width: 100%; box-sizing: border-box; min-height: 8rem; font: 12px/1.4 ui-monospace, monospace; }
  .bar { display: flex; gap: 1rem; align-items: center; margin: .5rem 0 1rem; }
  button { font: inherit; padding: .35rem 1.2rem; cursor: pointer; }
  #status { color: var(--muted); }
  #status[data-state="error"] { color: var(--bad); }
  section.event { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; margin: 0 0 1rem; }
  section.event h2 { font-size: 1.05rem; margin: 0; display: flex; gap: .6rem; align-items: baseline; }
  .outcome { font-size: .8rem; font-weight: 600; padding: .05rem .45rem; border-radius: 1rem; border: 1px solid currentColor; }
  .outcome-success { color: var(--ok); }
  .outcome-skipped_column, .outcome-untracked, .outcome-empty, .outcome-excluded { color: var(--warn); }
  .outcome-malformed { color: var(--bad); }
  .meta { color: var(--muted); font-size: .85rem; margin: .2rem 0 .4rem; word-break: break-all; }
  table { border-collapse: collapse; width: 100%; font: 12px/1.4 ui-monospace, monospace; }
  th, td { text-align: left; vertical-align: top; padding: .15rem .5rem; border-top: 1px solid var(--line); }
  th { width: 14rem; font-weight: 600; }
  td { white-space: pre-wrap; word-break: break-all; }
  td.null { color: var(--bad); font-style: italic; }
  td.empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<h1>spade parse</h1>
<p class="hint">Paste edge log lines (JSON or legacy <code>ip [secs] data=…</code>), one per line, or a bare
base64 payload (sent as if it came from 127.0.0.1 now). Ctrl+Enter parses.</p>
<textarea id="input" spellcheck="false" autofocus placeholder='{"receivedAt": "…", "clientIp": "…", "uuid": "…", "data": "eyJldmVudCI6…"}'></textarea>
<div class="bar"><button id="parse" type="button">Parse</button><span id="status" data-state="idle"></span></div>
<div id="results"></div>
<script>
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var token = params.get('token');
  var input = document.getElementById('input');
  var button = document.getElementById('parse');
  var statusEl = document.getElementById('status');
  var results = document.getElementById('results');
  var LEGACY = /^\\s*\\S+\\s+\\[[0-9.]+\\]\\s+data=/;

  function looksLikeEdgeLine(line) {
    var t = line.trim();
    return t.charAt(0) === '{' || LEGACY.test(t);
  }

  function newUuid() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    return 'page-' + Math.random().toString(16).slice(2) + Date.now().toString(16);
  }

  function wrapPayload(payload) {
    var data = payload.indexOf('data=') === 0 ? payload.slice(5) : payload;
    return JSON.stringify({
      receivedAt: new Date().toISOString(),
      clientIp: '127.0.0.1',
      uuid: newUuid(),
      data: data,
      recordversion: 3,
      edgeType: 'external'
    });
  }

  /** Edge lines pass as they are; without any, the whole text is one payload (it may be wrapped). */
  function toEdgeLines(text) {
    var lines = text.split(/\\r?\\n/).filter(function (l) { return l.trim() !== ''; });
    if (lines.length === 0) return [];
    if (!lines.some(looksLikeEdgeLine)) return [wrapPayload(lines.join('').trim())];
    return lines.map(function (l) { return looksLikeEdgeLine(l) ? l : wrapPayload(l.trim()); });
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setStatus(state, text) {
    statusEl.setAttribute('data-state', state);
    statusEl.textContent = text;
  }

  function render(events) {
    results.textContent = '';
    events.forEach(function (ev) {
      var section = el('section', 'event');
      section.setAttribute('data-outcome', ev.outcome);
      var h = el('h2');
      var name = ev.event !== '' ? ev.event : ev.outcome === 'malformed' ? '(malformed line)' : '(no event name)';
      h.appendChild(el('span', 'name', name));
      h.appendChild(el('span', 'outcome outcome-' + ev.outcome, ev.outcome));
      section.appendChild(h);
      var meta = [];
      if (ev.outcome !== 'malformed') meta.push('version ' + ev.version);
      if (ev.uuid) meta.push('uuid ' + ev.uuid);
      if (ev.reason) meta.push('reason: ' + ev.reason);
      if (meta.length) section.appendChild(el('div', 'meta', meta.join(' \\u00b7 ')));
      if (ev.columns) {
        var table = el('table', 'columns');
        Object.keys(ev.columns).forEach(function (col) {
          var v = ev.columns[col];
          var tr = el('tr');
          tr.setAttribute('data-column', col);
          tr.appendChild(el('th', '', col));
          if (v === null) tr.appendChild(el('td', 'null', 'NULL'));
          else if (v === '') tr.appendChild(el('td', 'empty', '(empty string)'));
          else tr.appendChild(el('td', 'value', String(v)));
          table.appendChild(tr);
        });
        section.appendChild(table);
      }
      results.appendChild(section);
    });
  }

  function run() {
    var lines = toEdgeLines(input.value);
    if (lines.length === 0) {
      setStatus('error', 'nothing to parse');
      return;
    }
    var headers = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (token) headers.Authorization = 'Bearer ' + token;
    button.disabled = true;
    setStatus('busy', 'parsing\\u2026');
    fetch('parse', { method: 'POST', headers: headers, body: lines.join('\\n') + '\\n' })
      .then(function (res) {
        return res.text().then(function (text) {
          var body;
          try { body = JSON.parse(text); } catch (e) { body = { error: text || res.statusText }; }
          if (!res.ok) throw new Error(res.status + ': ' + (body && body.error ? body.error : res.statusText));
          return body;
        });
      })
      .then(function (events) {
        render(events);
        setStatus('done', events.length + (events.length === 1 ? ' event' : ' events'));
      })
      .catch(function (err) {
        results.textContent = '';
        setStatus('error', String(err && err.message ? err.message : err));
      })
      .then(function () { button.disabled = false; });
  }

  button.addEventListener('click', run);
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  var preset = params.get('line');
  if (preset !== null) {
    input.value = preset;
    run();
  }
})();
</script>
</body>
</html>
`;
