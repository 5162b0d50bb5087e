/** The console sink: JSON lines for scripts, tables for a person, on the command's standard output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleSink } from '../../../../src/operators/sinks/console.js';
import { runContext } from '../../../support/run-ctx.js';
import { sink as makeSink } from '../../../support/operators.js';
import { APPEND, KEYED } from '../../../support/sink-contract.js';
import type { StreamInfo } from '../../../../src/operators/operator.js';
import type { Row } from '../../../../src/core/types.js';

function capture(isTTY: boolean) {
  const out: string[] = [];
  return { ctx: runContext({ flow: 'levels', output: { write: (s) => void out.push(s), isTTY } }), text: () => out.join('') };
}

async function epochs(cfg: Record<string, unknown>, input: StreamInfo, isTTY: boolean, batches: Row[][]) {
  const c = capture(isTTY);
  const sink = makeSink(consoleSink, { type: 'console', ...cfg }, input, c.ctx);
  await sink.open(undefined, 0);
  for (const [i, rows] of batches.entries()) {
    await sink.write(rows);
    await sink.commit(i + 1, await sink.preCommit(i + 1));
  }
  await sink.close();
  return c.text();
}

test('not on a terminal: one JSON object per row, as written, exact decimals', async () => {
  const text = await epochs({}, APPEND, false, [
    [{ id: 1, name: 'a "b"', amount: 99_999_999_999 }],
    [],
    [{ id: 2, name: null, amount: -5 }],
  ]);
  assert.deepEqual(text.split('\n').filter(Boolean), [
    '{"id":1,"name":"a \\"b\\"","amount":999999999.99}',
    '{"id":2,"name":null,"amount":-0.05}',
  ]);
});

test("on a terminal, a keyed stream: every key's current value after each epoch that changed one, sorted by key, numbers right-aligned", async () => {
  const text = await epochs({ title: 'Stock' }, KEYED, true, [
    [
      { id: 2, name: 'b', amount: 100 },
      { id: 1, name: 'a', amount: 5 },
    ],
    [],
    [{ id: 2, name: 'b', amount: 12345 }],
  ]);
  const tables = text.split('\nStock\n').filter(Boolean);
  assert.equal(tables.length, 2, 'an epoch that changed nothing prints nothing');
  assert.deepEqual(tables[0].trimEnd().split('\n'), ['id  name  amount', '--  ----  ------', ' 1  a       0.05', ' 2  b       1.00']);
  assert.deepEqual(tables[1].trimEnd().split('\n').slice(2), [' 1  a       0.05', ' 2  b     123.45']);
});

test("on a terminal, an append stream: the epoch's rows, at most maxRows; format json overrides the terminal", async () => {
  const rows = Array.from({ length: 5 }, (_, i) => ({ id: i, name: `n${i}`, amount: i }));
  const table = await epochs({ maxRows: 2 }, APPEND, true, [rows]);
  assert.match(table, /^\nlevels\n/, 'the flow names the table without a title');
  assert.deepEqual(
    table
      .trim()
      .split('\n')
      .slice(3)
      .map((l) => l.trim().split(/\s+/)[0]),
    ['0', '1', '…'],
  );
  assert.match(table, /… 3 more row\(s\)\n$/);
  const json = await epochs({ format: 'json' }, APPEND, true, [rows.slice(0, 2)]);
  assert.equal(json, '{"id":0,"name":"n0","amount":0.00}\n{"id":1,"name":"n1","amount":0.01}\n');
});
