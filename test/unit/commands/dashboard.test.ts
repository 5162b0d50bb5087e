import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, runCli } from '../../support/helpers.js';

const DEMO = path.join(ROOT, 'pipelines/demo.yaml');

test('dashboard: wrong settings are usage errors (exit 2, one line) before anything listens', async () => {
  for (const [args, msg] of [
    [['--host', '0.0.0.0'], /--host 0\.0\.0\.0 is reachable from other machines: set SALESPIPE_DASHBOARD_TOKEN/],
    [['--currency', 'usd'], /--currency usd: an ISO 4217 code/],
    [['--locale', 'not a tag!'], /--locale not a tag!: not a language tag/],
    [['--port', '70000'], /--port 70000: a port is a whole number from 0 to 65535/],
  ] as const) {
    const r = await runCli(['dashboard', DEMO, ...args], { SALESPIPE_DASHBOARD_TOKEN: '' });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const none = await runCli(['dashboard', path.join(ROOT, 'examples/sqlite-to-console.yaml')]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no output the dashboard shows/);
});
