/**
 * @module `type: file` sink: JSON lines appended to a local file.
 *
 * Rules: rows are appended as one JSON object per line (json-row.ts) and
 * fsynced in preCommit; the checkpoint records the file's length, and
 * reopening truncates anything written after it, so a replayed epoch never
 * leaves a duplicate line. Used for dead letters as well.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SinkDef, Sink, StreamInfo } from './operator.js';
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
    return new FileSink(path.resolve(ctx.specDir, cfg.path), input);
  },
};

export class FileSink implements Sink {
  private fd = -1;
  private size = 0;
  private encode;
  private chunks: string[] = [];

  constructor(readonly file: string, input: StreamInfo) {
    this.encode = makeJsonEncoder(input.schema);
  }

  async open(state: unknown) {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.fd = fs.openSync(this.file, 'a+');
    const committed = (state as { size?: number } | undefined)?.size;
    const actual = fs.fstatSync(this.fd).size;
    // Lines past the checkpointed length belong to an epoch that never committed.
    if (committed !== undefined && actual > committed) fs.ftruncateSync(this.fd, committed);
    this.size = committed !== undefined ? Math.min(committed, actual) : actual;
  }

  async write(rows: Row[]) {
    for (const r of rows) this.chunks.push(this.encode(r) + '\n');
    if (this.chunks.length >= 1000) this.drain();
  }

  private drain() {
    if (!this.chunks.length) return;
    const buf = Buffer.from(this.chunks.join(''));
    this.chunks = [];
    fs.writeSync(this.fd, buf);
    this.size += buf.length;
  }

  async preCommit() {
    this.drain();
    fs.fsyncSync(this.fd);
    return { size: this.size };
  }

  async commit() {}

  async close() {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
