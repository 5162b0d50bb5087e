/**
 * The sink contract: one suite every sink runs, each on a real output read
 * back by an independent reader (pyarrow, SQL, kcat, the file's lines).
 *
 * What it checks is the epoch protocol of operator.ts, as a crash leaves it:
 * open an empty output -> write -> preCommit -> crash before the checkpoint
 * -> reopen without it -> nothing of the epoch is visible (for `idempotent`
 * sinks: the epoch's upserts, whole) -> replay -> commit twice -> the epoch
 * is visible exactly once. Then the same one epoch later (reopened with the
 * last checkpoint's state), an epoch without rows, a reopen without any
 * checkpoint after output was published, and close before open.
 *
 * A new sink runs it by describing how to make a fresh output and read it
 * back (a SinkSubject); its `delivery` says which guarantee is checked.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Delivery, RunContext, Sink, StreamInfo } from '../../src/operators/operator.js';
import type { Row } from '../../src/core/types.js';
import { planContext, plan } from './operators.js';
import { colType } from './types.js';

/** A row as every reader reports it: the id, the name, the amount as exact text with two decimals. */
export interface ContractRow {
  id: number;
  name: string | null;
  amount: string;
}

const schema = [
  { name: 'id', type: colType('int') },
  { name: 'name', type: colType('string?') },
  { name: 'amount', type: colType('decimal(12,2)') },
];

/** Every row is a new fact. */
export const APPEND: StreamInfo = { mode: 'append', schema };
/** Rows are the latest value per id. */
export const KEYED: StreamInfo = { mode: 'update', key: ['id'], schema };

// Amounts are scaled integers (decimal(12,2): 1234 is 12.34); the names test quoting and Unicode.
const EPOCH_1: Row[] = [
  { id: 1, name: 'Dell Inspiron', amount: 5_000_000 },
  { id: 2, name: 'O\'Brien "quoted" \\ naïve ☃', amount: 99_999_999_999 },
  { id: 3, name: null, amount: 1 },
];
const EPOCH_2: Row[] = [
  { id: 2, name: 'Apple iPhone 12', amount: -250 },
  { id: 4, name: '', amount: 0 },
];

/** Exact text of an amount with two decimals, whatever the reader returned ("12.3", 12.3, "12.30"). */
export function money(v: unknown): string {
  const s = String(v);
  const neg = s.startsWith('-');
  const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
  return `${neg ? '-' : ''}${i}.${f.padEnd(2, '0')}`;
}

const asVisible = (r: Row): ContractRow => ({
  id: Number(r.id),
  name: (r.name as string | null) ?? null,
  amount: money((Number(r.amount) / 100).toFixed(2)),
});

function normalize(rows: ContractRow[]): ContractRow[] {
  return rows
    .map((r) => ({ id: Number(r.id), name: r.name ?? null, amount: money(r.amount) }))
    .sort((a, b) => a.id - b.id || JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** What readers should see after `epochs` committed: every row (append), or the latest per id. */
function expected(input: StreamInfo, epochs: Row[][]): ContractRow[] {
  const rows = epochs.flat();
  if (input.mode === 'append') return normalize(rows.map(asVisible));
  const latest = new Map<unknown, Row>();
  for (const r of rows) latest.set(r.id, r);
  return normalize([...latest.values()].map(asVisible));
}

/** The flow's Kafka transaction, for `transactional` sinks: the checkpoint commits it. */
export interface Transaction {
  /** Starts the flow's transactional producer (fencing an earlier one) and sets `ctx.kafkaTxn`. */
  begin(): Promise<void>;
  /** Commits the epoch's transaction, as the flow does with the checkpoint. */
  commit(epoch: number): Promise<void>;
  /** The process dies: its transaction is left open (the next begin fences and aborts it). */
  crash(): void;
  close(): Promise<void>;
}

/** A fresh output of the sink under test, and how to read it back. */
export interface Output {
  cfg: Record<string, unknown>;
  ctx: RunContext;
  /** What a reader of the output sees now, read independently of salespipe. */
  visible(): Promise<ContractRow[]>;
  txn?: Transaction;
  dispose?(): Promise<void>;
}

export interface SinkSubject {
  /** Names the subject in the tests' names, e.g. `parquet (keyed)`. */
  name: string;
  /** The sink's definition (any SinkDef: their config types are beyond comparing). */
  def: { delivery: Delivery; config: unknown; plan(...a: any[]): any; create(...a: any[]): Sink };
  input: StreamInfo;
  /** A new, empty output; may fail the test (t) when a service it needs is missing. */
  fresh(t: TestContext): Promise<Output | undefined>;
}

/** Runs the contract for `s`. */
export function sinkContract(s: SinkSubject): void {
  const delivery = s.def.delivery;
  const make = (o: Output): Sink => {
    const p = plan(s.def, o.cfg, s.input, planContext({ connections: o.ctx.connections, timeZone: o.ctx.timeZone }));
    assert.ok(p !== undefined, 'the sink plans');
    return s.def.create(p, o.ctx);
  };
  /** One epoch as the flow runs it: write, preCommit, checkpoint (the transaction), commit. Returns the checkpointed state. */
  const epoch = async (o: Output, sink: Sink, n: number, rows: Row[], commits = 1): Promise<unknown> => {
    await sink.write(rows);
    const state = structuredClone(await sink.preCommit(n)); // the checkpoint holds a copy
    await o.txn?.commit(n);
    for (let i = 0; i < commits; i++) await sink.commit(n, state);
    return state;
  };
  /** Opens a sink as a (re)started flow does: its transaction first, then the sink with the checkpoint's state. */
  const open = async (o: Output, state: unknown, n: number): Promise<Sink> => {
    await o.txn?.begin();
    const sink = make(o);
    await sink.open(state, n);
    return sink;
  };
  /** The process dies after preCommit, before the checkpoint. */
  const crash = async (o: Output, sink: Sink) => {
    o.txn?.crash();
    await sink.close();
  };
  const within = async (t: TestContext, fn: (o: Output) => Promise<void>) => {
    const o = await s.fresh(t);
    if (!o) return;
    try {
      await fn(o);
    } finally {
      await o.txn?.close();
      await o.dispose?.();
    }
  };
  /** After a crash: what readers may see of the epoch that did not commit. */
  const afterCrash = async (o: Output, before: Row[][], during: Row[]) => {
    const seen = normalize(await o.visible());
    if (delivery === 'idempotent') {
      // Written in place: the epoch's upserts are there whole, or not at all; the replay writes the same again.
      assert.ok(
        [expected(s.input, before), expected(s.input, [...before, during])].some((e) => JSON.stringify(e) === JSON.stringify(seen)),
        `after the crash, readers see ${JSON.stringify(seen)}: neither the last committed output nor it with the epoch's upserts whole`,
      );
    } else {
      assert.deepEqual(seen, expected(s.input, before), 'after the crash, readers see the output of the committed epochs only');
    }
  };

  describe(`${s.name} sink contract (${delivery})`, () => {
    test('an empty output opens; a first epoch that crashed before its checkpoint is not visible; its replay, committed twice, is visible exactly once', async (t) => {
      await within(t, async (o) => {
        let sink = await open(o, undefined, 0);
        assert.deepEqual(await o.visible(), [], 'a new output is empty');
        await sink.write(EPOCH_1);
        await sink.preCommit(1);
        await crash(o, sink);
        sink = await open(o, undefined, 0);
        await afterCrash(o, [], EPOCH_1);
        await epoch(o, sink, 1, EPOCH_1, 2);
        assert.deepEqual(
          normalize(await o.visible()),
          expected(s.input, [EPOCH_1]),
          'the replayed epoch, committed twice, is visible once',
        );
        await sink.close();
      });
    });

    test('reopened with the last checkpoint after a later epoch crashed: readers see the committed epochs, and the replay once', async (t) => {
      await within(t, async (o) => {
        let sink = await open(o, undefined, 0);
        const state1 = await epoch(o, sink, 1, EPOCH_1);
        await sink.write(EPOCH_2);
        await sink.preCommit(2);
        await crash(o, sink);
        sink = await open(o, state1, 1);
        await afterCrash(o, [EPOCH_1], EPOCH_2);
        const state2 = await epoch(o, sink, 2, EPOCH_2, 2);
        assert.deepEqual(normalize(await o.visible()), expected(s.input, [EPOCH_1, EPOCH_2]));
        await sink.close();
        // A clean restart from the last checkpoint changes nothing.
        sink = await open(o, state2, 2);
        await epoch(o, sink, 3, []);
        await sink.close();
        assert.deepEqual(
          normalize(await o.visible()),
          expected(s.input, [EPOCH_1, EPOCH_2]),
          'a restart from the last checkpoint keeps the output as it was',
        );
      });
    });

    test('an epoch without rows commits and changes nothing', async (t) => {
      await within(t, async (o) => {
        const sink = await open(o, undefined, 0);
        await epoch(o, sink, 1, []);
        assert.deepEqual(await o.visible(), []);
        await epoch(o, sink, 2, EPOCH_1);
        await epoch(o, sink, 3, []);
        assert.deepEqual(normalize(await o.visible()), expected(s.input, [EPOCH_1]));
        await sink.close();
      });
    });

    if (delivery === 'staged' || delivery === 'rollback') {
      test('after output was published, opening without the checkpoint refuses (it would write the same rows again)', async (t) => {
        await within(t, async (o) => {
          let sink = await open(o, undefined, 0);
          await epoch(o, sink, 1, EPOCH_1);
          await sink.close();
          sink = make(o);
          await assert.rejects(sink.open(undefined, 0), /up to epoch 1 .*no checkpoint of the flow was found/);
          await sink.close();
          assert.deepEqual(normalize(await o.visible()), expected(s.input, [EPOCH_1]), 'the refusal leaves the output as it was');
        });
      });
    } else if (delivery === 'idempotent') {
      test('a replay of every epoch from no checkpoint leaves the output as an uninterrupted run', async (t) => {
        await within(t, async (o) => {
          let sink = await open(o, undefined, 0);
          await epoch(o, sink, 1, EPOCH_1);
          await epoch(o, sink, 2, EPOCH_2);
          await sink.close();
          sink = await open(o, undefined, 0);
          await epoch(o, sink, 1, EPOCH_1);
          await epoch(o, sink, 2, EPOCH_2);
          await sink.close();
          assert.deepEqual(normalize(await o.visible()), expected(s.input, [EPOCH_1, EPOCH_2]));
        });
      });
    }

    test('close before open, and twice, is safe (a flow that failed to start closes every operator)', async (t) => {
      await within(t, async (o) => {
        const sink = make(o);
        await sink.close();
        await sink.close();
      });
    });
  });
}
