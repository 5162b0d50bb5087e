// Build step (npm run build): yaml, which every command that reads a spec
// loads at start-up, bundled into one ES module, dist/vendor/yaml.mjs,
// which package.json's "imports" (#yaml) points at. Loaded as it ships,
// its 84 CommonJS files cost `salespipe validate` about 30 ms more (module
// resolution, and Node's scan of CommonJS source for the names an ES import
// takes); measured A/B on this machine, median of 21 runs each: 330 ms
// before, 302 ms after. The code is yaml's own Node build, unminified, at
// the version package-lock.json pins; the names salespipe imports are
// listed here (src/spec/load.ts). commander gained nothing this way and is
// left as it ships.
import { build } from 'esbuild';

const NAMES = ['parseDocument', 'LineCounter', 'Document', 'Scalar', 'YAMLMap', 'YAMLSeq', 'isMap', 'isSeq', 'isScalar', 'isPair', 'visit'];

await build({
  stdin: { contents: `export { ${NAMES.join(', ')} } from 'yaml';`, resolveDir: process.cwd(), sourcefile: 'yaml-entry.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist/vendor/yaml.mjs',
  legalComments: 'inline',
  logLevel: 'warning',
  // yaml is CommonJS inside: its require('process') needs a require in an ES module.
  banner: { js: "import { createRequire as __salespipeRequire } from 'node:module'; const require = __salespipeRequire(import.meta.url);" },
});
