/** @module Build step (`npm run build`): writes validators.generated.cjs beside validators.js (see there). */
import fs from 'node:fs';
import { standaloneSource } from './validators.js';

fs.writeFileSync(new URL('./validators.generated.cjs', import.meta.url), await standaloneSource());
