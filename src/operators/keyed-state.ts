/**
 * @module Ids of keyed-state entries in a changelog (Step.stateChanges).
 *
 * Rules: an id is its key's values as JSON, BigInt written as `<digits>n`,
 * so equal keys give equal ids and ids of different keys differ.
 */
import { createHash } from 'node:crypto';

/**
 * The id of an alert event (threshold, stockout): a hash of the flow, the
 * key, the crossing number and the event, so a replay after a crash
 * repeats the same ids and a consumer can deduplicate.
 */
export const alertId = (scope: string, key: string, crossing: number, event: string): string =>
  createHash('sha256')
    .update(JSON.stringify([scope, key, crossing, event]))
    .digest('hex')
    .slice(0, 32);

export const entryId = (key: unknown): string => JSON.stringify(key, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
