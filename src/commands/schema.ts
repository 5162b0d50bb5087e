/** @module `salespipe schema`: the JSON Schema of pipeline specs. */
import type { IO } from '../core/io.js';
import { pipelineSchema } from '../spec/schema.js';

export default async function schema(io: IO): Promise<number> {
  io.stdout(JSON.stringify(pipelineSchema(), null, 2) + '\n');
  return 0;
}
