/** The file sink: JSON lines, exactly once across crashes, and what it does to a file that was there before. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileSink } from '../../../../src/operators/sinks/file.js';
import { runContext } from '../../../support/run-ctx.js';
import { sink as makeSink } from '../../../support/operators.js';
import { parseExact, tmpDir } from '../../../support/helpers.js';
import { sinkContract, APPEND, type ContractRow } from '../../../support/sink-contract.js';

/** The file's lines as a reader of JSON lines sees them, numbers as their exact text. */
const lines = (file: string): Record<string, string | null>[] =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(parseExact) : [];

sinkContract({
  name: 'file',
  def: fileSink,
  input: APPEND,
  async fresh() {
    const dir = tmpDir();
    return {
      cfg: { type: 'file', path: 'out/rows.jsonl' },
      ctx: runContext({ specDir: dir }),
      visible: async () => lines(path.join(dir, 'out/rows.jsonl')) as unknown as ContractRow[],
    };
  },
});

test('lines already in the file are kept; a crashed first epoch is cut back to them, not further', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'rows.jsonl');
  fs.writeFileSync(file, '{"id":0,"name":"from before","amount":1.00}\n');
  const ctx = runContext({ specDir: dir });
  const cfg = { type: 'file', path: 'rows.jsonl' };
  let sink = makeSink(fileSink, cfg, APPEND, ctx);
  await sink.open(undefined, 0);
  await sink.write([{ id: 1, name: 'a', amount: 100 }]);
  await sink.preCommit(1);
  await sink.close(); // killed before the checkpoint
  sink = makeSink(fileSink, cfg, APPEND, ctx);
  await sink.open(undefined, 0);
  assert.deepEqual(
    lines(file).map((l) => l.id),
    ['0'],
    'the crashed epoch is gone, the earlier line stays',
  );
  await sink.write([{ id: 1, name: 'a', amount: 100 }]);
  await sink.commit(1, await sink.preCommit(1));
  await sink.close();
  assert.deepEqual(lines(file), [
    { id: '0', name: 'from before', amount: '1.00' },
    { id: '1', name: 'a', amount: '1.00' },
  ]);
});
