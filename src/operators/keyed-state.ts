/**
 * @module Ids of keyed-state entries in a changelog (Step.stateChanges).
 *
 * Rules: an id is its key's values as JSON, BigInt written as `<digits>n`,
 * so equal keys give equal ids and ids of different keys differ.
 */
export const entryId = (key: unknown): string => JSON.stringify(key, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
