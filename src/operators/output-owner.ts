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
 * - In any store (a local folder, S3, HDFS), the markers are
 *   `_salespipe/<pipeline>.<flow>.json`, each written whole by one put
 *   (StoreMarkers).
 * - A flow running as tasks (one per input partition) writes as one owner
 *   per task (`<flow>.<partition>`), each with its own marker and files;
 *   an exclusive output still refuses any other flow.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fsyncDir } from '../core/durable.js';
import type { Store } from '../storage/store.js';

export { fsCall, fsyncDir, explainFsError } from '../core/durable.js';

export interface Owner {
  pipeline: string;
  /** The flow, or one of its tasks (`<flow>.<partition>`, operator.ts taskName): each task is an owner of its own. */
  flow: string;
}

/** Whether two owners are the same flow, or tasks of one flow (writers of one output, each of its own files). */
const sameFlow = (a: Owner, b: Owner) => a.pipeline === b.pipeline && a.flow.split('.')[0] === b.flow.split('.')[0];

export interface Marker extends Owner {
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
    checkMarkers(this.all(), this.owner, this.what, epoch, checkpointWhere, exclusive);
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

/** OutputMarkers.check over markers read from anywhere (a local folder, an object store). */
export function checkMarkers(all: Marker[], owner: Owner, what: string, epoch: number, checkpointWhere: string, exclusive: boolean): void {
  const mine = all.find((m) => m.pipeline === owner.pipeline && m.flow === owner.flow);
  if (mine && mine.epoch > epoch) {
    throw new Error(
      `${what} holds output of flow ${owner.flow} up to epoch ${mine.epoch} (${mine.at}), but ${epoch ? `the checkpoint found is of epoch ${epoch}` : 'no checkpoint of the flow was found'} (${checkpointWhere}): ` +
        'a run without that checkpoint would write the same records again. Run it with its checkpoint (the same --state-dir, or the Kafka cluster that holds it), or move the output away to start over',
    );
  }
  const other = exclusive ? all.find((m) => !sameFlow(m, owner)) : undefined;
  if (other) throw new Error(`${what} is written by flow ${other.flow} of pipeline ${other.pipeline} as well; it can have one writer only`);
}

const DIR = '_salespipe';

/** The markers of a dataset in any store (the rules above). */
export class StoreMarkers {
  constructor(
    private store: Store,
    private owner: Owner,
    private what: string,
  ) {}

  private async all(): Promise<Marker[]> {
    const out: Marker[] = [];
    for (const e of await this.store.list(DIR)) {
      if (!e.key.endsWith('.json') || e.key.split('/').pop()!.startsWith('.')) continue;
      try {
        out.push(JSON.parse(Buffer.from(await this.store.read(e.key)).toString('utf8')));
      } catch {
        /* a foreign or vanished file */
      }
    }
    return out;
  }

  async check(epoch: number, checkpointWhere: string, exclusive: boolean): Promise<void> {
    checkMarkers(await this.all(), this.owner, this.what, epoch, checkpointWhere, exclusive);
  }

  async write(epoch: number): Promise<void> {
    const m: Marker = { ...this.owner, epoch, at: new Date().toISOString() };
    await this.store.put(`${DIR}/${this.owner.pipeline}.${this.owner.flow}.json`, Buffer.from(JSON.stringify(m)));
  }
}
