/**
 * @module `salespipe explain`: a plan as text — operators, edges, schemas, modes.
 */
import type { Plan, FlowPlan } from './plan.js';
import type { StreamInfo } from '../operators/operator.js';
import { typeName } from '../core/types.js';
import { redact } from '../core/log.js';

const schemaText = (s: StreamInfo) => s.schema.map((f) => `${f.name} ${typeName(f.type)}`).join(', ');

const dur = (ms: number) =>
  ms % 86_400_000 === 0
    ? `${ms / 86_400_000}d`
    : ms % 3_600_000 === 0
      ? `${ms / 3_600_000}h`
      : ms % 60_000 === 0
        ? `${ms / 60_000}m`
        : ms % 1000 === 0
          ? `${ms / 1000}s`
          : `${ms}ms`;

const streamText = (s: StreamInfo) =>
  `${s.mode}${s.key ? ` keyed by (${s.key.join(', ')})` : ''}${s.eventTime ? `, event time ${s.eventTime}` : ''}` +
  (s.watermark
    ? `, ${s.watermark.slide === s.watermark.size ? 'tumbling' : `hopping every ${dur(s.watermark.slide)},`} ${dur(s.watermark.size)} windows on ${s.watermark.on}, watermark = max(${s.watermark.on}) - ${dur(s.watermark.lateness)}`
    : '');

function what(type: string, cfg: Record<string, unknown>): string {
  const bits = [type];
  for (const k of ['table', 'topic', 'path', 'cursor', 'connection', 'group']) if (cfg[k] !== undefined) bits.push(`${k}=${cfg[k]}`);
  if (cfg.key !== undefined) bits.push(`key=${[cfg.key].flat().join('+')}`);
  if (Array.isArray(cfg.partitionBy) && cfg.partitionBy.length) bits.push(`partitionBy=${cfg.partitionBy.join('/')}`);
  return bits.join(' ');
}

function flowText(f: FlowPlan, checkpointTopic: string): string[] {
  const lines = [
    `flow ${f.name}${f.upstream.length ? `  (downstream of ${f.upstream.join(', ')})` : ''}; checkpoint every ${formatMs(f.checkpointMs)}`,
  ];
  lines.push(`  [source] ${what(f.source.type, f.source.cfg)}`);
  lines.push(`      => ${streamText(f.source.out)}: ${schemaText(f.source.out)}`);
  f.steps.forEach((s, i) => {
    lines.push(`  [step ${i + 1}] ${s.def.describe(s.cfg)}`);
    const same = schemaText(s.out) === schemaText(s.input) && streamText(s.out) === streamText(s.input);
    lines.push(`      => ${same ? 'same stream' : `${streamText(s.out)}: ${schemaText(s.out)}`}`);
  });
  for (const s of f.sinks) lines.push(`  [sink] ${what(s.type, s.cfg)}`);
  lines.push(`  [dead letters] ${f.deadLetter ? what(f.deadLetter.type, f.deadLetter.cfg) : 'file in the state directory (default)'}`);
  if (f.late) lines.push(`  [late records] ${what(f.late.type, f.late.cfg)}`);
  lines.push(
    `  [checkpoint] ${
      f.kafkaOutput
        ? `in Kafka topic ${checkpointTopic} (connection ${f.kafkaOutput}), committed in one transaction with the Kafka outputs`
        : f.checkpointConnection
          ? `in Kafka topic ${checkpointTopic} (connection ${f.checkpointConnection}), committed in a transaction of its own`
          : 'local file in the state directory'
    }`,
  );
  lines.push(
    `  [tasks] ${
      f.tasks.perPartition
        ? `one per partition of topic ${f.source.cfg.topic}, each with its own checkpoint, transaction and output files`
        : `one: ${f.tasks.because}`
    }`,
  );
  return lines;
}

export function explainText(plan: Plan): string {
  const conns = Object.entries(plan.connections).map(([n, c]) => {
    const sasl = c.sasl as { mechanism: string; username: string } | undefined;
    return `  ${n}: ${c.type} ${c.url ?? c.brokers ?? ''}${c.tls ? ', tls' : ''}${sasl ? `, sasl ${sasl.mechanism} as ${sasl.username}` : ''}`.trimEnd();
  });
  return redact(
    [
      `pipeline ${plan.pipeline} (${plan.file})`,
      `time zone ${plan.timeZone}; checkpoint interval ${plan.checkpointInterval}`,
      ...(conns.length ? ['connections:', ...conns] : []),
      '',
      ...plan.flows.flatMap((f) => [...flowText(f, plan.checkpointTopic), '']),
    ].join('\n'),
  );
}

/** One node of the plan graph, for the diagram formats. */
interface GraphNode {
  id: string;
  label: string;
  shape: 'source' | 'step' | 'sink' | 'topic' | 'side';
}
interface GraphEdge {
  from: string;
  to: string;
  label?: string;
}
interface Graph {
  flows: { name: string; nodes: GraphNode[] }[];
  topics: GraphNode[];
  edges: GraphEdge[];
}

/** Columns four to a line, so that a label stays narrow. */
const wrapped = (s: StreamInfo) => {
  const cols = s.schema.map((f) => `${f.name} ${typeName(f.type)}`);
  const lines: string[] = [];
  for (let i = 0; i < cols.length; i += 4) lines.push(cols.slice(i, i + 4).join(', '));
  return lines.join('<br/>');
};

/**
 * An edge's label: mode, key and windows always; the columns only where
 * they differ from the edge before (a source's edge always has them).
 */
const edgeText = (s: StreamInfo, prev: StreamInfo | undefined) =>
  `${wrapLine(streamText(s))}${prev && schemaText(prev) === schemaText(s) ? '' : `<br/>${wrapped(s)}`}`;

/** Breaks a long description at its commas. */
const wrapLine = (t: string) =>
  t.length <= 60
    ? t
    : t
        .split(', ')
        .reduce((acc, part) => {
          const last = acc[acc.length - 1];
          if (last !== undefined && last.length + part.length < 60) acc[acc.length - 1] = `${last}, ${part}`;
          else acc.push(part);
          return acc;
        }, [] as string[])
        .join(',<br/>');

function graphOf(plan: Plan): Graph {
  const g: Graph = { flows: [], topics: [], edges: [] };
  const topicIds = new Map<string, string>();
  const topic = (name: string) => {
    let id = topicIds.get(name);
    if (!id) {
      id = `topic${topicIds.size}`;
      topicIds.set(name, id);
      g.topics.push({ id, label: `topic ${name.slice(name.indexOf('|') + 1)}`, shape: 'topic' });
    }
    return id;
  };
  plan.flows.forEach((f, fi) => {
    const nodes: GraphNode[] = [];
    const id = (k: string) => `f${fi}_${k}`;
    nodes.push({
      id: id('src'),
      label: `${f.source.type} source<br/>${what(f.source.type, f.source.cfg).split(' ').slice(1).join('<br/>')}`,
      shape: 'source',
    });
    for (const t of f.reads) g.edges.push({ from: topic(t), to: id('src') });
    let prev = id('src');
    let stream = f.source.out;
    let before: StreamInfo | undefined;
    f.steps.forEach((s, i) => {
      nodes.push({ id: id(`s${i}`), label: wrapLine(s.def.describe(s.cfg)), shape: 'step' });
      g.edges.push({ from: prev, to: id(`s${i}`), label: edgeText(stream, before) });
      prev = id(`s${i}`);
      before = stream;
      stream = s.out;
    });
    // Every sink takes the same stream: its columns are shown once.
    f.sinks.forEach((s, i) => {
      nodes.push({ id: id(`k${i}`), label: `${s.type} sink<br/>${what(s.type, s.cfg).split(' ').slice(1).join('<br/>')}`, shape: 'sink' });
      g.edges.push({ from: prev, to: id(`k${i}`), label: edgeText(stream, i === 0 ? before : stream) });
      for (const t of s.def.writes?.(s.cfg, plan.connections) ?? []) g.edges.push({ from: id(`k${i}`), to: topic(t) });
    });
    const side = (k: 'deadLetter' | 'late', label: string) => {
      const s = f[k];
      nodes.push({ id: id(k), label: `${label}<br/>${s ? what(s.type, s.cfg) : 'file in the state directory'}`, shape: 'side' });
      g.edges.push({ from: id('src'), to: id(k), label: k === 'late' ? 'behind the watermark' : 'bad records' });
      for (const t of s?.def.writes?.(s.cfg, plan.connections) ?? []) g.edges.push({ from: id(k), to: topic(t) });
    };
    side('deadLetter', 'dead letters');
    if (f.late) side('late', 'late records');
    g.flows.push({ name: f.name, nodes });
  });
  return g;
}

/** `explain --format mermaid`: a flowchart (renders on GitHub and in most Markdown viewers). */
export function explainMermaid(plan: Plan): string {
  const g = graphOf(plan);
  const esc = (s: string) => s.replace(/"/g, '#quot;');
  const shape = (n: GraphNode) => {
    const l = `"${esc(n.label)}"`;
    return n.shape === 'source'
      ? `${n.id}[(${l})]`
      : n.shape === 'sink'
        ? `${n.id}[/${l}/]`
        : n.shape === 'topic'
          ? `${n.id}{{${l}}}`
          : n.shape === 'side'
            ? `${n.id}>${l}]`
            : `${n.id}[${l}]`;
  };
  const lines = ['flowchart TB'];
  for (const f of g.flows) {
    lines.push(`  subgraph ${f.nodes[0].id.split('_')[0]}["flow ${esc(f.name)}"]`);
    for (const n of f.nodes) lines.push(`    ${shape(n)}`);
    lines.push('  end');
  }
  for (const t of g.topics) lines.push(`  ${shape(t)}`);
  for (const e of g.edges) lines.push(e.label ? `  ${e.from} -->|"${esc(e.label)}"| ${e.to}` : `  ${e.from} --> ${e.to}`);
  return redact(lines.join('\n'));
}

/** `explain --format dot`: Graphviz (`salespipe explain F --format dot | dot -Tsvg > plan.svg`). */
export function explainDot(plan: Plan): string {
  const g = graphOf(plan);
  const q = (s: string) =>
    `"${s
      .replace(/\\/g, '\\\\')
      .replace(/"/g, '\\"')
      .replace(/<br\/>/g, '\\n')}"`;
  const attrs = (n: GraphNode) =>
    ({
      source: 'shape=cylinder',
      step: 'shape=box',
      sink: 'shape=parallelogram',
      topic: 'shape=hexagon, style=filled, fillcolor="#eeeeee"',
      side: 'shape=note',
    })[n.shape];
  // Top to bottom: a pipeline's chain of flows is long, its branches few; labels stay narrow.
  const lines = [
    `digraph ${q(plan.pipeline)} {`,
    '  rankdir=TB;',
    '  node [fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=8];',
  ];
  for (const f of g.flows) {
    lines.push(`  subgraph ${q(`cluster_${f.name}`)} {`, `    label=${q(`flow ${f.name}`)};`);
    for (const n of f.nodes) lines.push(`    ${n.id} [label=${q(n.label)}, ${attrs(n)}];`);
    lines.push('  }');
  }
  for (const t of g.topics) lines.push(`  ${t.id} [label=${q(t.label)}, ${attrs(t)}];`);
  for (const e of g.edges) lines.push(`  ${e.from} -> ${e.to}${e.label ? ` [label=${q(e.label)}]` : ''};`);
  lines.push('}');
  return redact(lines.join('\n'));
}

/** 100ms, 5s, 1.5s, 2m: an interval as a spec would write it. */
function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}
