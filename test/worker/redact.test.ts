/**
 * The one redaction function (worker/redact.ts), form by form: userinfo
 * passwords (raw `@` and `:` in them, percent-encoded), secret query
 * parameters (libpq and pre-signed S3 URLs), a mix, and URLs inside texts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redactor, redactText, redactUrl } from '../../worker/redact.js';

/** `secrets`: the values as written (a Redactor hides them anywhere); `fragments`: no part of them may show. */
const cases: { name: string; url: string; redacted: string; secrets: string[]; fragments?: string[] }[] = [
  {
    name: 'userinfo password',
    url: 'postgres://u:S3cretPw@h:5432/db',
    redacted: 'postgres://u:***@h:5432/db',
    secrets: ['S3cretPw'],
  },
  {
    name: 'raw @ and : in the password: the host starts after the last @',
    url: 'postgres://u:S3c@ret:Pw@h/db',
    redacted: 'postgres://u:***@h/db',
    secrets: ['S3c@ret:Pw'],
    fragments: ['S3c', 'ret:Pw'],
  },
  {
    name: 'raw / in the password',
    url: 'postgres://u:S3c/retPw@h/db',
    redacted: 'postgres://u:***@h/db',
    secrets: ['S3c/retPw'],
    fragments: ['S3c', 'retPw'],
  },
  {
    name: 'percent-encoded password',
    url: 'postgres://u:S3c%40retPw@h/db',
    redacted: 'postgres://u:***@h/db',
    secrets: ['S3c%40retPw', 'S3c@retPw'],
    fragments: ['S3c', 'retPw'],
  },
  {
    name: 'password query parameter',
    url: 'postgres://host/db?user=u&password=S3cretPw',
    redacted: 'postgres://host/db?user=u&password=***',
    secrets: ['S3cretPw'],
  },
  {
    name: 'sslpassword, sslkey, passfile parameters; sslcert stays',
    url: 'postgres://h/db?sslpassword=S3cretA&sslkey=/k/S3cretB.key&passfile=/S3cretC&sslcert=/c.pem',
    redacted: 'postgres://h/db?sslpassword=***&sslkey=***&passfile=***&sslcert=/c.pem',
    secrets: ['S3cretA', '/k/S3cretB.key', '/S3cretC'],
  },
  {
    name: 'pre-signed S3 URL',
    url: 'https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAS3cret%2F1&X-Amz-Security-Token=S3cretT&X-Amz-Signature=S3cretSig&X-Amz-Expires=60',
    redacted:
      'https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Security-Token=***&X-Amz-Signature=***&X-Amz-Expires=60',
    secrets: ['AKIAS3cret%2F1', 'S3cretT', 'S3cretSig'],
  },
  {
    name: 'legacy S3 signature, token and secret parameters',
    url: 'https://h/c.json?AWSAccessKeyId=AKIAS3cret&Signature=S3cretSig&token=S3cretTok&client_secret=S3cretCs',
    redacted: 'https://h/c.json?AWSAccessKeyId=***&Signature=***&token=***&client_secret=***',
    secrets: ['AKIAS3cret', 'S3cretSig', 'S3cretTok', 'S3cretCs'],
  },
  {
    name: 'mixed: userinfo with raw @, and query parameters',
    url: 'postgres://u:S3c@retPw@h:5439/db?sslmode=require&password=S3cretQ&application_name=spade',
    redacted: 'postgres://u:***@h:5439/db?sslmode=require&password=***&application_name=spade',
    secrets: ['S3c@retPw', 'S3cretQ'],
    fragments: ['S3c', 'retPw'],
  },
];

for (const c of cases) {
  test(`redactUrl: ${c.name}`, () => {
    assert.equal(redactUrl(c.url), c.redacted);
    // Inside a text (a log line, an error), and registered with a Redactor.
    const text = `cannot connect to ${c.url}: connection refused`;
    const redactor = new Redactor();
    redactor.addUrl(c.url);
    const hidden = [...c.secrets, ...(c.fragments ?? [])];
    for (const out of [redactText(text), redactor.apply(text)]) {
      for (const s of hidden) assert.ok(!out.includes(s), `${s} in ${out}`);
      assert.ok(out.startsWith(`cannot connect to ${c.redacted}`), out);
    }
    // A driver echoing the bare secret (decoded or not) in an error of its own.
    const echoed = redactor.apply(`auth failed: ${c.secrets.join(' ')} ${c.secrets.map(decodeURIComponent).join(' ')}`);
    for (const s of c.secrets) assert.ok(!echoed.includes(s), `${s} in ${echoed}`);
  });
}

test('what is no secret stays: users, hosts, paths with @, other parameters, plain directories', () => {
  for (const same of [
    'postgres://loader@h/db',
    's3://bucket/user@example.com/file.gz',
    'http://h:8080/a@b?x=1',
    '/some/dir',
    'pglite:///var/lib/w',
  ]) {
    assert.equal(redactUrl(same), same);
  }
  assert.equal(redactText('redacting twice: postgres://u:***@h/db'), 'redacting twice: postgres://u:***@h/db');
});

test('secret name=value pairs outside URLs are masked too, up to the next blank', () => {
  assert.equal(
    redactText("host=h password=S3cret user=u, PGPASSWORD=S3cret2 (token=abc) mode='x'"),
    "host=h password=*** user=u, PGPASSWORD=*** (token=*** mode='x'",
  );
});
