/** Declared types against the table's column types: what fits, what warns, what is refused, per database. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { columnProblem } from '../../../src/operators/sql-table.js';
import { colType as t } from '../../support/types.js';

test('text holding decimals is how SQLite keeps them exact (sql/sqlite.sql): it fits there, and is refused where a real decimal type exists', () => {
  assert.equal(columnProblem('price', 'TEXT', t('decimal(12,2)'), 'sqlite'), undefined);
  assert.equal(columnProblem('price', 'varchar(20)', t('decimal(12,2)'), 'mysql')?.severity, 'error');
  assert.equal(columnProblem('price', 'text', t('decimal(12,2)'), 'postgres')?.severity, 'error');
  assert.equal(columnProblem('qty', 'TEXT', t('int'), 'sqlite')?.severity, 'warning', 'an int in text still warns on SQLite');
});

test('a float column read as a decimal warns of rounding; a wider decimal warns of dead letters; matching types are quiet', () => {
  assert.match(columnProblem('p', 'double', t('decimal(12,2)'), 'mysql')!.message, /rounded to 2 decimal place/);
  assert.match(
    columnProblem('p', 'decimal(12,4)', t('decimal(12,2)'), 'postgres')!.message,
    /more than 2 decimal place\(s\) go to the dead-letter output/,
  );
  assert.equal(columnProblem('p', 'decimal(12,2)', t('decimal(12,2)'), 'mysql'), undefined);
  assert.equal(columnProblem('q', 'bigint', t('int'), 'postgres'), undefined);
});
