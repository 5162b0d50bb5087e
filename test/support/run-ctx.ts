/** A RunContext for driving one operator directly in a test. */
import type { RunContext } from '../../src/operators/operator.js';
import { createLogger } from '../../src/core/log.js';

export function runContext(over: Partial<RunContext> = {}): RunContext {
  return {
    pipeline: 'test',
    flow: 'f',
    stateDir: '/tmp',
    specDir: process.cwd(),
    timeZone: 'UTC',
    drain: true,
    log: createLogger(() => undefined),
    signal: new AbortController().signal,
    connections: {},
    upstreamDone: Promise.resolve(),
    output: { write: () => undefined, isTTY: false },
    ...over,
  };
}
