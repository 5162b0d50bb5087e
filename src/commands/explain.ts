/** @module `salespipe explain FILE`: the plan as text, Mermaid or Graphviz. */
import type { IO } from '../core/io.js';
import { explainText, explainMermaid, explainDot } from '../plan/explain.js';
import { oneSpec, planOrPrint } from './common.js';

export default async function explain(file: string, o: { format: 'text' | 'mermaid' | 'dot' }, io: IO): Promise<number> {
  const plan = planOrPrint(oneSpec(file), io);
  if (!plan) return 2;
  io.stdout({ text: explainText, mermaid: explainMermaid, dot: explainDot }[o.format](plan) + '\n');
  return 0;
}
