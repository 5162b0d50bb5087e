/**
 * @module Who wrote a local output, up to which epoch; and what a failed
 * filesystem call really means.
 *
 * Rules:
 * - A Parquet dataset or JSON-lines file records, per flow that writes it,
 *   the last epoch whose output it published (a small JSON file written by
 *   atomic rename at each commit). A flow opening with an older checkpoint,
 *   or none (a new --state-dir, another working directory, a checkpoint
 *   topic that was deleted), would write that output again: it refuses,
 *   saying where its checkpoint was looked for.
 * - File names written by a flow carry its owner tag (a hash of pipeline and
 *   flow), so one flow never overwrites or cleans up another's files.
 * - A filesystem error names the output, the path and the real cause: a
 *   recursive mkdir on a read-only filesystem reports ENOENT, so the
 *   nearest existing ancestor is probed for the errno that applies there.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

export interface Owner {
  pipeline: string;
  flow: string;
}

interface Marker extends Owner {
  epoch: number;
  at: string;
  /** A file's length before the flow first wrote to it, until the flow's first checkpoint records one. */
  base?: number;
}

/** Six hex digits naming a (pipeline, flow) in file names. */
export const ownerTag = (o: Owner) => crypto.createHash('sha256').update(`${o.pipeline}/${o.flow}`).digest('hex').slice(0, 6);

export class OutputMarkers {
  private file: string;

  /** `dir` holds one marker file per owner; `what` names the output in messages. */
  constructor(
    private dir: string,
    private owner: Owner,
    private what: string,
  ) {
    this.file = path.join(dir, `${owner.pipeline}.${owner.flow}.json`);
  }

  private all(): Marker[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: Marker[] = [];
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.dir, n), 'utf8')));
      } catch {
        /* a partial write never happens (rename); ignore foreign files */
      }
    }
    return out;
  }

  /** This owner's marker, if it has written one here. */
  mine(): Marker | undefined {
    return this.all().find((m) => m.pipeline === this.owner.pipeline && m.flow === this.owner.flow);
  }

  /**
   * Throws unless `epoch` (the checkpoint's; 0: none) covers everything this
   * owner published here; with `exclusive`, also if another flow writes here.
   */
  check(epoch: number, checkpointWhere: string, exclusive: boolean): void {
    const all = this.all();
    const mine = this.mine();
    if (mine && mine.epoch > epoch) {
      throw new Error(
        `${this.what} holds output of flow ${this.owner.flow} up to epoch ${mine.epoch} (${mine.at}), but ${epoch ? `the checkpoint found is of epoch ${epoch}` : 'no checkpoint of the flow was found'} (${checkpointWhere}): ` +
          'a run without that checkpoint would write the same records again. Run it with its checkpoint (the same --state-dir, or the Kafka cluster that holds it), or move the output away to start over',
      );
    }
    const other = exclusive ? all.find((m) => m.pipeline !== this.owner.pipeline || m.flow !== this.owner.flow) : undefined;
    if (other)
      throw new Error(`${this.what} is written by flow ${other.flow} of pipeline ${other.pipeline} as well; it can have one writer only`);
  }

  /** Records, durably, that `epoch`'s output is published (with `base`: what the output held before this owner wrote to it). */
  write(epoch: number, base?: number): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(
        fd,
        JSON.stringify({ ...this.owner, epoch, at: new Date().toISOString(), ...(base === undefined ? {} : { base }) } satisfies Marker),
      );
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    fsyncDir(this.dir);
  }
}

/** Makes a directory's entries (renames, new files) durable. */
export function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not every filesystem allows fsync on a directory; the rename is still atomic.
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Runs a filesystem call; a failure says which output, which path, and why. */
export function fsCall<T>(what: string, target: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw explainFsError(e, what, target);
  }
}

export function explainFsError(e: unknown, what: string, target: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (!err?.code) return err;
  let code = err.code;
  let at = err.path ?? target;
  if (code === 'ENOENT') {
    // mkdir -p on a read-only or unwritable parent says ENOENT: ask the nearest existing directory.
    let dir = path.resolve(target);
    while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    try {
      fs.rmdirSync(fs.mkdtempSync(path.join(dir, '.salespipe-probe-')));
    } catch (probe) {
      code = (probe as NodeJS.ErrnoException).code ?? code;
      at = dir;
    }
  }
  const why: Record<string, string> = {
    EROFS: 'the filesystem is mounted read-only',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    ENOTDIR: 'a part of the path is a file, not a directory',
    EISDIR: 'the path is a directory',
    ENOENT: 'no such file or directory',
  };
  return new Error(`${what}: cannot write ${at}: ${why[code] ?? err.message} (${code})`);
}
