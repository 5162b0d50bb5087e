import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { CSP, isLoopback, serveDashboard } from '../../../src/dashboard/server.js';

function options(view: { version: number; data: unknown }, token?: string) {
  return {
    host: '127.0.0.1',
    port: 0,
    token,
    version: () => view.version,
    view: () => view.data,
    recommendations: (c: string) => (c === '42' ? { customer_id: '42', recommendations: [] } : undefined),
    settings: { currency: 'USD', locale: 'en-US', title: 't' },
  };
}

/** The first `n` frames of /events (with Last-Event-ID `last`), then the stream is closed. */
function frames(url: string, n: number, headers: Record<string, string> = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/events`, { headers }, (res) => {
      if (res.statusCode !== 200) return resolve([`HTTP ${res.statusCode}`]);
      let buf = '';
      res.on('data', (d) => {
        buf += d;
        const got = buf.split('\n\n').filter((f) => f.includes('event: view'));
        if (got.length >= n) {
          req.destroy();
          resolve(got.slice(0, n));
        }
      });
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

test('every answer carries the Content-Security-Policy; read-only; the page and uPlot come from the package', async () => {
  const s = await serveDashboard(options({ version: 1, data: { a: 1 } }));
  try {
    for (const p of ['/', '/app.js', '/app.css', '/vendor/uPlot.iife.min.js', '/vendor/uPlot.min.css', '/api/view', '/settings.json']) {
      const r = await fetch(s.url + p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers.get('content-security-policy'), CSP, p);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      await r.arrayBuffer();
    }
    assert.match(CSP, /script-src 'self';/);
    assert.doesNotMatch(CSP, /unsafe-inline|unsafe-eval|https?:/);
    const page = await (await fetch(s.url + '/')).text();
    assert.doesNotMatch(page, /<script>|\son\w+=|https?:\/\//, 'no inline script, handler or outside address in the page');
    const app = await (await fetch(s.url + '/app.js')).text();
    assert.doesNotMatch(
      app,
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
      'the page writes values as text only',
    );
    assert.equal((await fetch(s.url + '/api/view', { method: 'POST' })).status, 405);
    assert.equal((await fetch(s.url + '/api/recommendations?customer=42')).status, 200);
    const unknown = await fetch(s.url + '/api/recommendations?customer=7');
    assert.equal(unknown.status, 200, 'an unknown customer is an answer, not an error');
    assert.deepEqual(await unknown.json(), { customer_id: '7', found: false });
    assert.equal((await fetch(s.url + '/nothing')).status, 404);
  } finally {
    await s.close();
  }
});

test('a token, when set, is required on every request and stream; /?token= sets a cookie and leaves the address bar', async () => {
  const s = await serveDashboard(options({ version: 3, data: {} }, 's3cret'));
  try {
    for (const p of ['/', '/app.js', '/api/view', '/settings.json', '/api/recommendations?customer=42'])
      assert.equal((await fetch(s.url + p)).status, 401, p);
    assert.deepEqual(await frames(s.url, 1), ['HTTP 401']);
    assert.equal((await fetch(s.url + '/api/view', { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(s.url + '/?token=wrong', { redirect: 'manual' })).status, 401);
    assert.equal(
      (await fetch(s.url + '/?token=%E0%A4%A', { redirect: 'manual' })).status,
      401,
      'a malformed token is refused, not a crash',
    );
    assert.equal((await fetch(s.url + '/api/view', { headers: { authorization: 'Bearer s3cret' } })).status, 200);
    const r = await fetch(s.url + '/?token=s3cret', { redirect: 'manual' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/');
    const cookie = r.headers.get('set-cookie')!;
    assert.match(cookie, /^salespipe_token=s3cret; HttpOnly; SameSite=Strict; Path=\//);
    const c = cookie.split(';')[0];
    assert.equal((await fetch(s.url + '/', { headers: { cookie: c } })).status, 200);
    assert.equal((await frames(s.url, 1, { cookie: c })).length, 1);
  } finally {
    await s.close();
  }
  assert.equal(isLoopback('127.0.0.1'), true);
  assert.equal(isLoopback('::1'), true);
  assert.equal(isLoopback('0.0.0.0'), false);
  assert.equal(isLoopback('192.168.1.4'), false);
});

test('/events: the current view at once, then each change; Last-Event-ID of the current view waits for the next', async () => {
  const view = { version: 1, data: { n: 1 } as { n: number } };
  const s = await serveDashboard(options(view));
  try {
    const [first] = await frames(s.url, 1);
    const id = /^id: (\S+)$/m.exec(first)![1];
    assert.match(id, /^[0-9a-f]{8}-1$/);
    assert.match(first, /^data: \{"n":1\}$/m);
    // Reconnecting with the id already seen: nothing until the view changes.
    const next = frames(s.url, 1, { 'last-event-id': id });
    await new Promise((r) => setTimeout(r, 200));
    view.version = 2;
    view.data = { n: 2 };
    s.changed();
    const [second] = await next;
    assert.match(second, /^data: \{"n":2\}$/m);
    assert.match(second, /^id: [0-9a-f]{8}-2$/m);
    // An id from another server (restarted): the current view at once.
    const [again] = await frames(s.url, 1, { 'last-event-id': 'deadbeef-2' });
    assert.match(again, /^data: \{"n":2\}$/m);
  } finally {
    await s.close();
  }
});
