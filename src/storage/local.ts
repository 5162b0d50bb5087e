/**
 * @module A dataset on local disk (store.ts). Staged files wait as
 * `.<name>.<tag>.staged` beside their final name and are renamed onto it;
 * every file is fsynced before it is published and every rename is made
 * durable with its folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StagedGone, stagedIn, stagedName, type Entry, type Staged, type Store } from './store.js';
import { fsCall, fsyncDir } from '../core/durable.js';

export class LocalStore implements Store {
  readonly atomicDirRename = true;
  readonly where: string;

  constructor(
    readonly localDir: string,
    private what = `dataset ${localDir}`,
  ) {
    this.where = localDir;
  }

  async init() {
    fsCall(this.what, this.localDir, () => fs.mkdirSync(this.localDir, { recursive: true }));
  }

  private abs(key: string) {
    return key ? path.join(this.localDir, ...key.split('/')) : this.localDir;
  }

  async list(prefix = ''): Promise<Entry[]> {
    const out: Entry[] = [];
    const walk = (dir: string, rel: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw e;
      }
      for (const e of entries) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p, r);
        else {
          try {
            const st = fs.statSync(p);
            out.push({ key: r, size: st.size, mtime: st.mtimeMs });
          } catch {
            /* renamed away meanwhile */
          }
        }
      }
    };
    walk(this.abs(prefix), prefix);
    return out;
  }

  async exists(key: string) {
    return fs.existsSync(this.abs(key));
  }

  async read(key: string) {
    return fs.readFileSync(this.abs(key));
  }

  async download(key: string, file: string) {
    await pipeline(fs.createReadStream(this.abs(key)), fs.createWriteStream(file));
  }

  private writeDurably(file: string, bytes: Uint8Array) {
    fsCall(this.what, file, () => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fd = fs.openSync(file, 'w');
      try {
        fs.writeSync(fd, bytes);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  async put(key: string, bytes: Uint8Array) {
    const final = this.abs(key);
    const tmp = path.join(path.dirname(final), `.${path.basename(final)}.tmp`);
    this.writeDurably(tmp, bytes);
    fs.renameSync(tmp, final);
    fsyncDir(path.dirname(final));
  }

  async remove(key: string) {
    fs.rmSync(this.abs(key), { force: true });
  }

  async removeDir(prefix: string) {
    fs.rmSync(this.abs(prefix), { recursive: true, force: true });
  }

  async renameDir(from: string, to: string) {
    const dst = this.abs(to);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.renameSync(this.abs(from), dst);
    fsyncDir(path.dirname(dst));
    fsyncDir(path.dirname(this.abs(from)));
  }

  async stage(key: string, bytes: Uint8Array, tag: string): Promise<Staged> {
    const id = stagedName(key, tag);
    this.writeDurably(this.abs(id), bytes);
    return { key, id, tag };
  }

  async publish(s: Staged) {
    const staged = this.abs(s.id),
      final = this.abs(s.key);
    // A second publish finds the file in place already (the staged one is gone).
    if (!fs.existsSync(staged) && !fs.existsSync(final))
      throw new StagedGone(`${this.where}: the staged ${s.id} and ${s.key} are both gone`);
    if (fs.existsSync(staged)) fsCall(this.what, final, () => fs.renameSync(staged, final));
    for (let d = path.dirname(final); d.startsWith(this.localDir); d = path.dirname(d)) {
      fsyncDir(d);
      if (d === this.localDir) break;
    }
  }

  async staged(prefix = ''): Promise<Staged[]> {
    return stagedIn(await this.list(prefix));
  }

  async discard(s: Staged) {
    fs.rmSync(this.abs(s.id), { force: true });
  }

  async close() {}
}
