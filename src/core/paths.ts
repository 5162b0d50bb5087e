/**
 * @module Where the project's own files are: the code runs from dist/src/core/,
 * so the package root (package.json, sql/, pipelines/) is three levels up.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
