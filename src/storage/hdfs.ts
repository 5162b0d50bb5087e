/**
 * @module A dataset in an HDFS folder (store.ts), over WebHDFS (the
 * NameNode's HTTP API) with `node:http`.
 *
 * Rules:
 * - A staged file is written whole as `.<name>.<tag>.staged` beside its
 *   final name and published by RENAME with `renameoptions=OVERWRITE`,
 *   which the NameNode performs atomically; a folder swap is a RENAME too.
 * - Writes go to the DataNode the NameNode names (CREATE with
 *   `noredirect=true`, then the bytes to that location); reads follow the
 *   NameNode's redirect. `node:http`, not `fetch`: DataNodes answer a PUT
 *   with an unsolicited `100 Continue`, which Node's fetch rejects.
 * - Authentication is Hadoop's simple mode (`user.name`); Kerberos
 *   (SPNEGO) is not supported.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { withRetry } from '../connections/retry.js';
import { Entry, Staged, StagedGone, Store, StoreContext, StoreError, stagedIn, stagedName } from './store.js';

export interface HdfsConnection {
  type: 'hdfs';
  url?: string;
  user?: string;
}

/** An HTTP answer WebHDFS did not expect; 5xx ones are transient (retry.ts). */
class WebHdfsError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly exception?: string,
  ) {
    super(message);
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class HdfsStore implements Store {
  readonly atomicDirRename = true;
  readonly where: string;
  private base: URL;
  private root: string;
  private user: string;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  constructor(
    loc: { path: string; address?: string },
    conn: HdfsConnection,
    private label: string,
    private ctx: StoreContext,
  ) {
    const address = conn.url ?? loc.address;
    if (!address) throw new StoreError(`${label}: an hdfs connection needs url, the NameNode's WebHDFS address (http://host:9870)`);
    this.base = new URL(address);
    this.root = loc.path.replace(/\/+$/, '');
    this.user = conn.user ?? process.env.HADOOP_USER_NAME ?? process.env.USER ?? 'salespipe';
    this.where = `hdfs://${this.root} (${label})`;
  }

  private url(key: string, op: string, params: Record<string, string> = {}, base: URL = this.base) {
    const p = key ? `${this.root}/${key}` : this.root;
    const u = new URL(`/webhdfs/v1${p.split('/').map(encodeURIComponent).join('/')}`, base);
    u.searchParams.set('op', op);
    u.searchParams.set('user.name', this.user);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u;
  }

  private request(method: string, u: URL, body?: Uint8Array): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        u,
        {
          method,
          agent: this.agent,
          timeout: 60_000,
          headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`WebHDFS ${method} timed out`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** One WebHDFS call: the JSON answer, or an error naming the NameNode's exception; retried while transient. */
  private async call(what: string, method: string, u: URL, body?: Uint8Array, ok = [200, 201]): Promise<Answer> {
    return withRetry(`${this.where}: ${what}`, this.ctx.log, this.ctx.signal, async () => {
      const a = await this.request(method, u, body);
      if (ok.includes(a.status)) return a;
      let ex: { exception?: string; message?: string } = {};
      try {
        ex = JSON.parse(a.body.toString()).RemoteException ?? {};
      } catch {
        /* not JSON */
      }
      const msg = `${what}: WebHDFS answered ${a.status}${ex.exception ? ` ${ex.exception}` : ''}${ex.message ? `: ${ex.message}` : ''}`;
      if (a.status === 401 || ex.exception === 'AccessControlException' || ex.exception === 'SecurityException')
        throw new StoreError(`${this.label}: HDFS refused user ${this.user}: ${msg}`);
      throw new WebHdfsError(msg, a.status, ex.exception);
    });
  }

  private json(a: Answer) {
    return JSON.parse(a.body.toString());
  }

  async init() {
    await this.call('open', 'PUT', this.url('', 'MKDIRS'));
  }

  async list(prefix = ''): Promise<Entry[]> {
    const out: Entry[] = [];
    const walk = async (rel: string) => {
      let a: Answer;
      try {
        a = await this.call(`list ${rel || '.'}`, 'GET', this.url(rel, 'LISTSTATUS'));
      } catch (e) {
        if (e instanceof WebHdfsError && e.status === 404) return;
        throw e;
      }
      for (const f of this.json(a).FileStatuses.FileStatus as {
        pathSuffix: string;
        type: string;
        length: number;
        modificationTime: number;
      }[]) {
        const r = f.pathSuffix ? (rel ? `${rel}/${f.pathSuffix}` : f.pathSuffix) : rel;
        if (f.type === 'DIRECTORY') await walk(r);
        else out.push({ key: r, size: f.length, mtime: f.modificationTime });
      }
    };
    await walk(prefix);
    return out;
  }

  async exists(key: string) {
    try {
      await this.call(`stat ${key}`, 'GET', this.url(key, 'GETFILESTATUS'));
      return true;
    } catch (e) {
      if (e instanceof WebHdfsError && e.status === 404) return false;
      throw e;
    }
  }

  /** The DataNode a read of `key` is redirected to. */
  private async openAt(key: string): Promise<URL> {
    const a = await this.call(`read ${key}`, 'GET', this.url(key, 'OPEN', { noredirect: 'true' }), undefined, [200, 307]);
    return new URL(a.status === 307 ? a.headers.location! : this.json(a).Location);
  }

  async read(key: string): Promise<Uint8Array> {
    const at = await this.openAt(key);
    return (await this.call(`read ${key}`, 'GET', at)).body;
  }

  async download(key: string, file: string) {
    const at = await this.openAt(key);
    await withRetry(`${this.where}: read ${key}`, this.ctx.log, this.ctx.signal, async () => {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.get(at, { agent: this.agent, timeout: 60_000 }, resolve);
        req.on('timeout', () => req.destroy(Object.assign(new Error('WebHDFS read timed out'), { code: 'ETIMEDOUT' })));
        req.on('error', reject);
      });
      if (res.statusCode !== 200) {
        res.resume();
        throw new WebHdfsError(`read ${key}: the DataNode answered ${res.statusCode}`, res.statusCode ?? 0);
      }
      await pipeline(res, fs.createWriteStream(file));
    });
  }

  /** Writes `bytes` as `key` (overwriting): visible while it is written, so only hidden names are written this way. */
  private async create(key: string, bytes: Uint8Array) {
    const a = await this.call(`write ${key}`, 'PUT', this.url(key, 'CREATE', { overwrite: 'true', noredirect: 'true' }));
    const at = new URL(this.json(a).Location);
    await this.call(`write ${key}`, 'PUT', at, bytes);
  }

  private async rename(from: string, to: string) {
    const a = await this.call(
      `rename ${from}`,
      'PUT',
      this.url(from, 'RENAME', { destination: `${this.root}/${to}`, renameoptions: 'OVERWRITE' }),
    );
    // With renameoptions the NameNode answers 200 and no body (rename2 returns nothing; it throws on failure).
    if (a.body.length && this.json(a).boolean === false) throw new WebHdfsError(`rename ${from} to ${to}: HDFS refused it`, 409);
  }

  async put(key: string, bytes: Uint8Array) {
    const tmp = path.posix.join(path.posix.dirname(key), `.${path.posix.basename(key)}.tmp`);
    await this.create(tmp, bytes);
    await this.rename(tmp, key);
  }

  async remove(key: string) {
    await this.call(`delete ${key}`, 'DELETE', this.url(key, 'DELETE', { recursive: 'false' }));
  }

  async removeDir(prefix: string) {
    await this.call(`delete ${prefix}`, 'DELETE', this.url(prefix, 'DELETE', { recursive: 'true' }));
  }

  async renameDir(from: string, to: string) {
    const parent = path.posix.dirname(to);
    if (parent !== '.') await this.call(`mkdir ${parent}`, 'PUT', this.url(parent, 'MKDIRS'));
    // A folder onto a missing name: RENAME without OVERWRITE (HDFS does not overwrite a non-empty folder).
    const a = await this.call(`rename ${from}`, 'PUT', this.url(from, 'RENAME', { destination: `${this.root}/${to}` }));
    if (this.json(a).boolean === false) throw new WebHdfsError(`rename ${from} to ${to}: HDFS refused it (does ${to} exist?)`, 409);
  }

  async stage(key: string, bytes: Uint8Array, tag: string): Promise<Staged> {
    const id = stagedName(key, tag);
    await this.create(id, bytes);
    return { key, id, tag };
  }

  async publish(s: Staged) {
    // A second publish finds the staged file gone and the final one there.
    if (await this.exists(s.id)) await this.rename(s.id, s.key);
    else if (!(await this.exists(s.key))) throw new StagedGone(`${this.where}: the staged ${s.id} and ${s.key} are both gone`);
  }

  async staged(prefix = ''): Promise<Staged[]> {
    return stagedIn(await this.list(prefix));
  }

  async discard(s: Staged) {
    await this.remove(s.id);
  }

  async close() {
    this.agent.destroy();
  }
}
