/**
 * @module Topic ids (Kafka 2.8+): what a saved offset refers to.
 *
 * Rules:
 * - A topic deleted and created again under the same name gets a new id;
 *   offsets saved for the old one mean nothing in the new one. Checkpoints
 *   record the id so a recreated topic is noticed, never read from a stale
 *   offset.
 * - kafkajs 2.2 speaks Metadata up to v6, which carries no ids. This sends a
 *   Metadata v10-v12 request (flexible versions) over kafkajs's own
 *   connection, so TLS, SASL and retries stay kafkajs's. kafkajs writes the
 *   v1 request header and reads the v0 response header; a flexible header
 *   only adds an (empty) tagged-field section after them, which this
 *   request writes as the first byte of its body and skips in the response.
 * - A broker without Metadata v10 (Kafka before 2.8) yields null ids: the
 *   checkpoint then keeps the topic's name only.
 */
import kafkajs from 'kafkajs';
import { clusterOf } from './members.js';

const METADATA = 3;

/** Reads Kafka's flexible-version encoding. */
class Reader {
  private o = 0;
  constructor(private b: Buffer) {}
  int8() {
    return this.b.readInt8(this.o++);
  }
  int16() {
    const v = this.b.readInt16BE(this.o);
    this.o += 2;
    return v;
  }
  int32() {
    const v = this.b.readInt32BE(this.o);
    this.o += 4;
    return v;
  }
  uvarint(): number {
    let v = 0,
      shift = 0,
      byte;
    do {
      byte = this.b[this.o++];
      v |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return v >>> 0;
  }
  /** COMPACT_NULLABLE_STRING / COMPACT_STRING. */
  string(): string | null {
    const n = this.uvarint();
    if (n === 0) return null;
    const s = this.b.toString('utf8', this.o, this.o + n - 1);
    this.o += n - 1;
    return s;
  }
  uuid(): string {
    const h = this.b.toString('hex', this.o, this.o + 16);
    this.o += 16;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  array<T>(item: () => T): T[] {
    const n = this.uvarint();
    const out: T[] = [];
    for (let i = 1; i < n; i++) out.push(item());
    return out;
  }
  tags() {
    const n = this.uvarint();
    for (let i = 0; i < n; i++) {
      this.uvarint();
      this.o += this.uvarint();
    }
  }
}

function uvarint(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

/** The request body, the header's empty tagged fields first (see the module rules). */
function encodeRequest(version: number, topics: string[]): Buffer {
  const bytes: number[] = [0];
  bytes.push(...uvarint(topics.length + 1));
  for (const t of topics) {
    const name = Buffer.from(t, 'utf8');
    for (let i = 0; i < 16; i++) bytes.push(0); // topic_id: zero, look up by name
    bytes.push(...uvarint(name.length + 1), ...name, 0);
  }
  bytes.push(0); // allow_auto_topic_creation
  if (version === 10) bytes.push(0); // include_cluster_authorized_operations
  bytes.push(0, 0); // include_topic_authorized_operations, tagged fields
  return Buffer.from(bytes);
}

const ZERO_ID = '00000000-0000-0000-0000-000000000000';

function decodeResponse(version: number, b: Buffer): Map<string, { id: string | null; error: number }> {
  const r = new Reader(b);
  r.tags(); // the response header's tagged fields
  r.int32(); // throttle_time_ms
  r.array(() => {
    r.int32();
    r.string();
    r.int32();
    r.string();
    r.tags();
  });
  r.string(); // cluster_id
  r.int32(); // controller_id
  const out = new Map<string, { id: string | null; error: number }>();
  r.array(() => {
    const error = r.int16();
    const name = r.string();
    const id = r.uuid();
    r.int8(); // is_internal
    r.array(() => {
      r.int16();
      r.int32();
      r.int32();
      r.int32();
      for (let k = 0; k < 3; k++) r.array(() => r.int32());
      r.tags();
    });
    r.int32(); // topic_authorized_operations
    r.tags();
    if (name !== null) out.set(name, { id: id === ZERO_ID ? null : id, error });
  });
  return out;
}

interface BrokerLike {
  versions: Record<number, { minVersion: number; maxVersion: number }>;
  connectionPool: { send(r: unknown): Promise<unknown> };
}

/**
 * The id of each topic (null for a topic that does not exist, or on a broker
 * that has no ids); retried by the caller.
 */
export async function topicIds(kafka: kafkajs.Kafka, topics: string[]): Promise<Map<string, string | null>> {
  const cluster = clusterOf(kafka) as unknown as {
    connect(): Promise<void>;
    disconnect(): Promise<void>;
    brokerPool: { seedBroker?: BrokerLike };
  };
  await cluster.connect();
  try {
    const broker = cluster.brokerPool.seedBroker;
    if (!broker) throw new Error('kafkajs connected without a seed broker');
    {
      const v = broker.versions?.[METADATA];
      const out = new Map<string, string | null>(topics.map((t) => [t, null]));
      if (!v || v.maxVersion < 10) return out;
      const version = Math.min(12, v.maxVersion);
      const got = (await broker.connectionPool.send({
        request: {
          apiKey: METADATA,
          apiVersion: version,
          apiName: 'Metadata',
          encode: async () => {
            const buf = encodeRequest(version, topics);
            return { buf, buffer: buf };
          },
        },
        response: { decode: async (raw: Buffer) => decodeResponse(version, raw), parse: async (d: unknown) => d },
      })) as Map<string, { id: string | null; error: number }>;
      for (const t of topics) out.set(t, got.get(t)?.error === 0 ? got.get(t)!.id : null);
      return out;
    }
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
}
