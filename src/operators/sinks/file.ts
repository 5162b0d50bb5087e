/**
 * @module `type: file` sink: JSON lines appended to a local file.
 *
 * Rules: rows are appended as one JSON object per line (json-row.ts) and
 * fsynced in preCommit; the checkpoint records the file's length, and
 * reopening truncates anything written after it, so a replayed epoch never
 * leaves a duplicate line. Used for dead letters as well.
 * A marker beside the file (`.<name>.salespipe/`, output-owner.ts) records
 * the flow writing it and the last epoch it committed: a run without that
 * checkpoint refuses rather than append the same lines again. Before a
 * flow's first checkpoint records a length, the marker holds the length the
 * file had when the flow first opened it: a first epoch that never
 * committed is truncated away too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { taskName, type SinkDef, type Sink, type StreamInfo, type RunContext } from '../operator.js';
import { OutputMarkers, fsCall } from '../output-owner.js';
import type { Row } from '../../core/types.js';
import { makeJsonEncoder } from '../json-row.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'path'],
  properties: {
    type: { const: 'file' },
    path: { type: 'string', minLength: 1, description: 'File to append to (relative to the spec file).' },
  },
} as const;

export const fileSink: SinkDef<typeof config, { path: string; input: StreamInfo }> = {
  type: 'file',
  doc: 'Appends rows as JSON lines to a file, exactly once across restarts.',
  config,
  delivery: 'rollback',
  deadLetters: true,
  plan: (cfg, input) => ({ path: cfg.path, input }),
  create(p, ctx) {
    return new FileSink(path.resolve(ctx.specDir, p.path), p.input, ctx);
  },
};

export class FileSink implements Sink {
  private fd = -1;
  private size = 0;
  private encode;
  private chunks: string[] = [];
  private markers: OutputMarkers;
  private what: string;

  constructor(
    readonly file: string,
    input: StreamInfo,
    private ctx: Pick<RunContext, 'pipeline' | 'flow' | 'task' | 'checkpointWhere'>,
  ) {
    this.encode = makeJsonEncoder(input.schema);
    this.what = `file sink ${file}`;
    this.markers = new OutputMarkers(
      path.join(path.dirname(file), `.${path.basename(file)}.salespipe`),
      { pipeline: ctx.pipeline, flow: taskName(ctx) },
      `file ${file}`,
    );
  }

  async open(state: unknown, epoch: number) {
    fsCall(this.what, this.file, () => fs.mkdirSync(path.dirname(this.file), { recursive: true }));
    this.markers.check(epoch, this.ctx.checkpointWhere ?? 'the state directory', true);
    this.fd = fsCall(this.what, this.file, () => fs.openSync(this.file, 'a+'));
    const actual = fs.fstatSync(this.fd).size;
    let committed = (state as { size?: number } | undefined)?.size;
    if (committed === undefined) {
      committed = this.markers.mine()?.base;
      // Written before any line: what the file held before this flow wrote to it.
      if (committed === undefined) fsCall(this.what, this.file, () => this.markers.write(epoch, actual));
    }
    // Lines past the checkpointed length belong to an epoch that never committed.
    if (committed !== undefined && actual > committed) fs.ftruncateSync(this.fd, committed);
    this.size = Math.min(committed ?? actual, actual);
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
