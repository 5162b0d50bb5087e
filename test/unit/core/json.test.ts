import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonExact } from '../../../src/core/json.js';

test('numbers come back as their exact text, strings untouched (digits, escapes and quotes inside them)', () => {
  const text =
    '{"a": 12345678901234567890.12, "b": -0.5, "c": 1e3, "d": "x: 5, y", "e": "q\\"7\\"", "f": [1, 2.50, {"g": 90071992547409931}], "h": null, "i": true}';
  assert.deepEqual(parseJsonExact(text), {
    a: '12345678901234567890.12',
    b: '-0.5',
    c: '1e3',
    d: 'x: 5, y',
    e: 'q"7"',
    f: ['1', '2.50', { g: '90071992547409931' }],
    h: null,
    i: true,
  });
  assert.equal(parseJsonExact('42'), '42');
  assert.throws(() => parseJsonExact('{"a": }'));
});
