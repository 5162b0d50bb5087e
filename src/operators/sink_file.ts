/**
 * @module `type: file` sink: JSON lines appended to a local file.
 *
 * Rules: rows are appended as one JSON object per line (json-row.ts) and
 * fsynced in preCommit; the checkpoint records the file's length, and
 * reopening truncates anything written after it, so a replayed epoch never
 * leaves a duplicate line. Used for dead letters as well.
 * A marker beside the file (`.<name>.salespipe/`, output-owner.ts) records
 * the flow writing it and the last epoch it committed: a run without that
 * checkpoint refuses rather than append the same lines again.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SinkDef, Sink, StreamInfo, RunContext } from './operator.js';
import { OutputMarkers, fsCall } from './output-owner.js';
import type { Row } from '../types.js';
import { makeJsonEncoder } from './json-row.js';

interface Config { type: 'file'; path: string }

export const fileSink: SinkDef<Config> = {
  type: 'file',
  doc: 'Appends rows as JSON lines to a file, exactly once across restarts.',
  config: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'path'],
    properties: {
      type: { const: 'file' },
      path: { type: 'string', minLength: 1, description: 'File to append to (relative to the spec file).' },
    },
  },
  plan() {},
  create(cfg, input, ctx) {
    return new FileSink(path.resolve(ctx.specDir, cfg.path), input, ctx);
  },
};

export class FileSink implements Sink {
  private fd = -1;
  private size = 0;
  private encode;
  private chunks: string[] = [];
  private markers: OutputMarkers;
  private what: string;

  constructor(readonly file: string, input: StreamInfo, private ctx: Pick<RunContext, 'pipeline' | 'flow' | 'checkpointWhere'>) {
    this.encode = makeJsonEncoder(input.schema);
    this.what = `file sink ${file}`;
    this.markers = new OutputMarkers(path.join(path.dirname(file), `.${path.basename(file)}.salespipe`), { pipeline: ctx.pipeline, flow: ctx.flow }, `file ${file}`);
  }

  async open(state: unknown, epoch: number) {
    fsCall(this.what, this.file, () => fs.mkdirSync(path.dirname(this.file), { recursive: true }));
    this.markers.check(epoch, this.ctx.checkpointWhere ?? 'the state directory', true);
    this.fd = fsCall(this.what, this.file, () => fs.openSync(this.file, 'a+'));
    const committed = (state as { size?: number } | undefined)?.size;
    const actual = fs.fstatSync(this.fd).size;
    // Lines past the checkpointed length belong to an epoch that never committed.
    if (committed !== undefined && actual > committed) fs.ftruncateSync(this.fd, committed);
    this.size = committed !== undefined ? Math.min(committed, actual) : actual;
    this.committedSize = this.size;
  }

  async write(rows: Row[]) {
    for (const r of rows) this.chunks.push(this.encode(r) + '\n');
    if (this.chunks.length >= 1000) this.drain();
  }

  private drain() {
    if (!this.chunks.length) return;
    const buf = Buffer.from(this.chunks.join(''));
    this.chunks = [];
    fsCall(this.what, this.file, () => fs.writeSync(this.fd, buf));
    this.size += buf.length;
  }

  private committedSize = -1;

  async preCommit() {
    this.drain();
    fsCall(this.what, this.file, () => fs.fsyncSync(this.fd));
    return { size: this.size };
  }

  async commit(epoch: number) {
    // Only an epoch that wrote lines needs recording: a replay of later epochs writes nothing here.
    if (this.size !== this.committedSize) this.markers.write(epoch);
    this.committedSize = this.size;
  }

  async close() {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
