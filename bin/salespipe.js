#!/usr/bin/env node
// Thin launcher: all behaviour lives in src/cli.ts (compiled to dist/ by `npm ci`).
import { main } from '../dist/src/cli.js';

await main();
