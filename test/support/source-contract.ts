/**
 * The source contract: one suite every source runs, on a real system
 * (a database table, a Kafka topic) written by an independent client.
 *
 * What it checks is what exactly-once needs of a source (operator.ts):
 * opened at a position it returns every record after it once and nothing
 * before it; `position()` covers exactly the records returned so far, and
 * survives the JSON of a checkpoint; the checkpoint's position, not what
 * `commit` acknowledged, is where a reopened source resumes (a restart
 * replays the epoch that did not commit); a drain ends; a run that does not
 * drain waits for new records and stops when its signal is aborted.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { RunContext, Source } from '../../src/operators/operator.js';
import { planContext, plan } from './operators.js';
import { runContext } from './run-ctx.js';

/** The columns every subject's records carry, as its config declares them. */
export const CONTRACT_SCHEMA = { id: 'int', name: 'string', amount: 'decimal(12,2)' };

/** A record with this id, as the subject's writer stores it. */
export const record = (id: number) => ({ id, name: `product ${id}`, amount: `${id}.05` });

export interface SourceFixture {
  /** The source's config (its schema: CONTRACT_SCHEMA). */
  cfg: Record<string, unknown>;
  /** Context fields of every run (connections, pipeline); drain and signal are the suite's. */
  ctx: Partial<RunContext>;
  /** Writes records with these ids, in this order, through an independent client. */
  append(ids: number[]): Promise<void>;
  dispose?(): Promise<void>;
}

export interface SourceSubject {
  name: string;
  /** The source's definition (any SourceDef). */
  def: { config: unknown; plan(...a: any[]): any; create(...a: any[]): Source };
  /** A new, empty table or topic; may fail the test (t) when a service it needs is missing. */
  fresh(t: TestContext): Promise<SourceFixture | undefined>;
}

/** How long a test waits for records that were written before it fails (a service, not this machine's speed, is then at fault). */
const PATIENCE_MS = 60_000;

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** What a checkpoint keeps of a position: its JSON. */
const saved = (p: unknown) => JSON.parse(JSON.stringify(p ?? null)) ?? undefined;

export function sourceContract(s: SourceSubject): void {
  const open = async (f: SourceFixture, position: unknown, drain: boolean, signal = new AbortController().signal): Promise<Source> => {
    const ctx = runContext({ ...f.ctx, drain, signal });
    const p = plan(s.def, f.cfg, planContext({ connections: ctx.connections, timeZone: ctx.timeZone }));
    assert.ok(p?.planned, 'the source plans');
    const src = s.def.create(p.planned, ctx);
    await src.open(position);
    return src;
  };
  /** Ids of every record until the drain ends, checking each batch's rows and the dead letters. */
  const drain = async (src: Source): Promise<number[]> => {
    const ids: number[] = [];
    for (let b = await src.next(); b; b = await src.next()) {
      assert.deepEqual(b.dead, [], 'no record of the contract is a dead letter');
      for (const r of b.rows) {
        assert.equal(r.name, `product ${r.id}`);
        assert.equal(r.amount, Number(r.id) * 100 + 5, 'amounts arrive as exact scaled decimals');
        ids.push(Number(r.id));
      }
    }
    return ids;
  };
  /** Reads until `want` ids arrived (a run that does not drain never ends by itself). */
  const readUntil = async (src: Source, want: number, got: number[] = []): Promise<number[]> => {
    const deadline = Date.now() + PATIENCE_MS;
    while (got.length < want) {
      if (Date.now() > deadline)
        assert.fail(`after ${PATIENCE_MS / 1000} s the source had returned ${got.length} of ${want} records: ${got.join(',')}`);
      const b = await src.next();
      assert.ok(b, 'a source that does not drain returns batches until it is stopped');
      got.push(...b.rows.map((r) => Number(r.id)));
    }
    return got;
  };
  const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);
  const within = async (t: TestContext, fn: (f: SourceFixture) => Promise<void>) => {
    const f = await s.fresh(t);
    if (!f) return;
    try {
      await fn(f);
    } finally {
      await f.dispose?.();
    }
  };

  describe(`${s.name} source contract`, () => {
    test('a first open reads every record there, each once; a drain then ends', async (t) => {
      await within(t, async (f) => {
        await f.append(range(1, 7));
        const src = await open(f, undefined, true);
        const ids = await drain(src);
        assert.deepEqual(sorted(ids), range(1, 7));
        assert.equal(await src.next(), null, 'a drained source stays drained');
        await src.close();
      });
    });

    test('an empty source drains at once, and its position then reads what comes later', async (t) => {
      await within(t, async (f) => {
        let src = await open(f, undefined, true);
        assert.deepEqual(await drain(src), []);
        const p = saved(src.position());
        await src.close();
        await f.append(range(1, 3));
        src = await open(f, p, true);
        assert.deepEqual(sorted(await drain(src)), range(1, 3));
        await src.close();
      });
    });

    test('a position taken after the first batch resumes right after it: every record once across the restart', async (t) => {
      await within(t, async (f) => {
        await f.append(range(1, 9));
        let src = await open(f, undefined, true);
        const first = await src.next();
        assert.ok(first && first.rows.length > 0, 'the first batch has records');
        const before = first.rows.map((r) => Number(r.id));
        const p = saved(src.position());
        await src.close(); // killed: nothing after the position was taken counts
        src = await open(f, p, true);
        const after = await drain(src);
        await src.close();
        assert.deepEqual(sorted([...before, ...after]), range(1, 9));
      });
    });

    test('reopened at a saved position it returns only what came after it; the position, not commit(), is where it resumes', async (t) => {
      await within(t, async (f) => {
        await f.append(range(1, 5));
        let src = await open(f, undefined, true);
        assert.deepEqual(sorted(await drain(src)), range(1, 5));
        const p5 = saved(src.position());
        await src.commit(p5);
        await src.close();
        await f.append(range(6, 9));
        src = await open(f, p5, true);
        assert.deepEqual(sorted(await drain(src)), range(6, 9));
        await src.commit(saved(src.position())); // acknowledged, but its checkpoint is lost (the epoch did not commit)
        await src.close();
        src = await open(f, p5, true);
        assert.deepEqual(sorted(await drain(src)), range(6, 9), 'reopened at the older checkpoint, the records after it come again');
        await src.close();
      });
    });

    test('not draining, it waits for new records and returns them; an abort ends it', async (t) => {
      await within(t, async (f) => {
        await f.append(range(1, 3));
        const stop = new AbortController();
        const src = await open(f, undefined, false, stop.signal);
        const got = await readUntil(src, 3);
        const waiting = src.next(); // nothing new yet: waits, or returns an empty batch
        await f.append(range(4, 6));
        const b = await waiting;
        if (b) got.push(...b.rows.map((r) => Number(r.id)));
        await readUntil(src, 6, got);
        assert.deepEqual(sorted(got), range(1, 6));
        stop.abort();
        const deadline = Date.now() + PATIENCE_MS;
        let end = await src.next();
        while (end && end.rows.length === 0 && Date.now() < deadline) end = await src.next();
        assert.equal(end, null, 'a stopped source returns null');
        await src.close();
      });
    });

    test('close right after open, and close twice, are safe', async (t) => {
      await within(t, async (f) => {
        const src = await open(f, undefined, true);
        await src.close();
        await src.close();
      });
    });
  });
}
