/**
 * @module The dashboard's web server: the page, its assets, and the live
 * view pushed with server-sent events.
 *
 * Rules:
 * - Read-only: GET and HEAD only.
 * - Bound to 127.0.0.1 by default. On any other address a token is
 *   required (the command refuses to start without one) and checked on
 *   every request and stream, in constant time: `Authorization: Bearer T`,
 *   or the cookie set by opening `/?token=T` once.
 * - Every answer carries a Content-Security-Policy that allows only the
 *   page's own scripts, styles and connections; the page writes every
 *   value as text (never as HTML).
 * - `/events` sends the whole view as one `view` event, with an id of the
 *   form `<boot>-<version>`; a browser reconnecting with Last-Event-ID gets
 *   the current view at once unless it already has it. Views are pushed at
 *   most twice a second, and every 5 s regardless (figures such as "the
 *   last hour" move with the clock). Streams are limited to 64 at once.
 * - Assets come from the package (web/) and node_modules (uPlot): no CDN.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PACKAGE_ROOT } from '../core/paths.js';

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const MAX_STREAMS = 64;

export interface ServerOptions {
  host: string;
  port: number;
  /** Required unless the host is a loopback address. */
  token?: string;
  /** Grows whenever the view would change (cheap: asked every half second). */
  version: () => number;
  /** The current view, as JSON-able data (computed only to be sent). */
  view: () => unknown;
  /** A customer's recommendations, if known. */
  recommendations: (customer: string) => unknown;
  /** Settings the page reads once (currency, locale, title). */
  settings: Record<string, string>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const require = createRequire(import.meta.url);
const ASSETS: Record<string, { file: () => string; type: string }> = {
  '/': { file: () => path.join(PACKAGE_ROOT, 'web/index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: () => path.join(PACKAGE_ROOT, 'web/app.js'), type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: () => path.join(PACKAGE_ROOT, 'web/app.css'), type: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

export interface DashboardServer {
  url: string;
  /** Pushes the view to every stream now if it changed. */
  changed(): void;
  close(): Promise<void>;
}

export async function serveDashboard(o: ServerOptions): Promise<DashboardServer> {
  const boot = crypto.randomBytes(4).toString('hex');
  const streams = new Set<{ res: http.ServerResponse; sent: number }>();
  const cache = new Map<string, Buffer>();
  const asset = (p: string) => {
    let b = cache.get(p);
    if (!b) cache.set(p, (b = fs.readFileSync(ASSETS[p].file())));
    return b;
  };
  const tokenOk = (req: http.IncomingMessage, url: URL): boolean | 'cookie' => {
    if (!o.token) return true;
    const given = [
      /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1],
      /(?:^|;\s*)salespipe_token=([^;]+)/.exec(req.headers.cookie ?? '')?.[1],
    ];
    const ok = (t: string | undefined) => {
      if (!t) return false;
      let given: string;
      try {
        given = decodeURIComponent(t);
      } catch {
        return false;
      }
      const a = crypto.createHash('sha256').update(given).digest();
      const b = crypto.createHash('sha256').update(o.token!).digest();
      return crypto.timingSafeEqual(a, b);
    };
    if (given.some(ok)) return true;
    return url.pathname === '/' && ok(url.searchParams.get('token') ?? undefined) ? 'cookie' : false;
  };

  let lastPushed = -1;
  const push = (force: boolean) => {
    const version = o.version();
    if (!force && version === lastPushed) return;
    lastPushed = version;
    const frame = `id: ${boot}-${version}\nevent: view\ndata: ${JSON.stringify(o.view())}\n\n`;
    for (const s of streams) {
      if (s.res.writableLength > 4 * 1024 * 1024) {
        s.res.destroy(); // a browser that does not read: it reconnects and gets the current view
        continue;
      }
      s.res.write(frame);
      s.sent = version;
    }
  };
  let pending: NodeJS.Timeout | undefined;
  const changed = () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      push(false);
    }, 500);
  };
  const every = setInterval(() => push(true), 5000);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const headers = {
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    };
    const send = (status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) => {
      res.writeHead(status, { ...headers, 'content-type': type, ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'read-only\n', { allow: 'GET, HEAD' });
    const auth = tokenOk(req, url);
    if (!auth) return send(401, 'text/plain', 'a token is required: open /?token=… once, or send Authorization: Bearer …\n');
    if (auth === 'cookie')
      // The token leaves the address bar (and the history) at once.
      return send(303, 'text/plain', 'see /\n', {
        location: '/',
        'set-cookie': `salespipe_token=${encodeURIComponent(o.token!)}; HttpOnly; SameSite=Strict; Path=/`,
      });
    if (url.pathname === '/favicon.ico') return send(204, 'text/plain', '');
    if (ASSETS[url.pathname]) return send(200, ASSETS[url.pathname].type, asset(url.pathname));
    if (url.pathname === '/settings.json') return send(200, 'application/json', JSON.stringify(o.settings));
    if (url.pathname === '/api/view') return send(200, 'application/json', JSON.stringify(o.view()));
    if (url.pathname === '/api/recommendations') {
      const id = url.searchParams.get('customer') ?? '';
      const r = o.recommendations(id);
      // An unknown customer is an answer, not an error.
      return send(200, 'application/json', JSON.stringify(r ?? { customer_id: id, found: false }));
    }
    if (url.pathname === '/events') {
      if (streams.size >= MAX_STREAMS) return send(503, 'text/plain', 'too many open streams\n', { 'retry-after': '5' });
      res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      res.write('retry: 2000\n\n');
      const s = { res, sent: -1 };
      streams.add(s);
      req.on('close', () => streams.delete(s));
      const version = o.version();
      if (req.headers['last-event-id'] !== `${boot}-${version}`) {
        res.write(`id: ${boot}-${version}\nevent: view\ndata: ${JSON.stringify(o.view())}\n\n`);
        s.sent = version;
      }
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${o.host}:${o.port} (${e.code ?? e.message})`)));
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    changed,
    close: () =>
      new Promise((resolve) => {
        clearInterval(every);
        clearTimeout(pending);
        for (const s of streams) s.res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
