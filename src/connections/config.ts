/**
 * @module Connections as the spec names them: their config schema, the
 * plan-time checks, and the names messages give them. No client library is
 * loaded here (planning and validation need none).
 *
 * Rules: a connection is named once under the spec's `connections:` and
 * referenced by name; URLs carry credentials only through `${VAR}`
 * interpolation, and are never logged unredacted.
 */
import { redact } from '../core/log.js';

export const connectionsConfig = {
  type: 'object',
  description: 'Named connections, referenced by sources and sinks through `connection:`.',
  additionalProperties: {
    type: 'object',
    required: ['type'],
    properties: {
      type: {
        enum: ['sql', 'kafka', 's3', 'hdfs'],
        description: 'sql (MySQL/MariaDB, PostgreSQL, SQLite), kafka, s3 (an S3 object store) or hdfs (HDFS over WebHDFS).',
      },
    },
    allOf: [
      {
        if: { properties: { type: { const: 'sql' } } },
        then: {
          properties: {
            type: true,
            url: {
              type: 'string',
              description:
                'mysql://user:pass@host:3306/db, postgres://user:pass@host:5432/db, or sqlite:path/to/file.db (relative to the spec file).',
            },
            pool: { type: 'integer', minimum: 1, description: 'Maximum pooled connections (default 4).' },
          },
          required: ['url'],
          additionalProperties: false,
        },
      },
      {
        if: { properties: { type: { const: 'kafka' } } },
        then: {
          properties: {
            type: true,
            brokers: { type: 'string', description: 'Comma-separated host:port list, e.g. 127.0.0.1:9092.' },
            clientId: { type: 'string', description: 'Client id reported to the brokers (default salespipe).' },
            sessionTimeout: {
              type: 'string',
              description:
                "How long a consumer-group member (a flow's source, a pipeline's lease) may go silent before the brokers give its partitions to another: a process killed on another machine holds them that long. Shorter moves work sooner but a long pause (GC, a slow disk) is taken for a death; the brokers allow group.min.session.timeout.ms to group.max.session.timeout.ms (6s to 30m by default). Default 10s.",
            },
            topicPrefix: {
              type: 'string',
              pattern: '^[A-Za-z0-9._-]*$',
              description:
                'Prepended to every topic and consumer group on this connection, e.g. to keep environments apart on one cluster (default none).',
            },
            tls: {
              description: 'TLS to the brokers: true (system CAs), or the files to use (paths relative to the spec).',
              oneOf: [
                { type: 'boolean' },
                {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    ca: { type: 'string', description: "PEM file of the CA that signed the brokers' certificates." },
                    cert: { type: 'string', description: 'PEM client certificate (mutual TLS).' },
                    key: { type: 'string', description: 'PEM client key (mutual TLS).' },
                    rejectUnauthorized: { type: 'boolean', description: "Verify the brokers' certificates (default true)." },
                  },
                },
              ],
            },
            sasl: {
              type: 'object',
              additionalProperties: false,
              required: ['mechanism', 'username', 'password'],
              description: 'SASL authentication; the password must come from the environment (${VAR}).',
              properties: {
                mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'], description: 'plain, scram-sha-256 or scram-sha-512.' },
                username: { type: 'string' },
                password: { type: 'string', description: 'Always ${VAR}: a password written in the spec is an error.' },
              },
            },
          },
          required: ['brokers'],
          additionalProperties: false,
        },
      },
      {
        if: { properties: { type: { const: 's3' } } },
        then: {
          properties: {
            type: true,
            endpoint: {
              type: 'string',
              pattern: '^https?://',
              description: 'The S3 endpoint, e.g. http://127.0.0.1:9000 for a server of your own (default: AWS for the region).',
            },
            region: { type: 'string', description: 'Region (default AWS_REGION, else us-east-1).' },
            pathStyle: {
              type: 'boolean',
              description:
                'Address buckets as endpoint/bucket rather than bucket.endpoint (most servers other than AWS need it; default false).',
            },
            accessKeyId: {
              type: 'string',
              description:
                'Access key id; without it the AWS default chain is used (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles).',
            },
            secretAccessKey: { type: 'string', description: 'Always ${VAR}: a secret written in the spec is an error.' },
            sessionToken: { type: 'string', description: 'Temporary credentials: the session token (${VAR}).' },
          },
          dependentRequired: { accessKeyId: ['secretAccessKey'], secretAccessKey: ['accessKeyId'] },
          additionalProperties: false,
        },
      },
      {
        if: { properties: { type: { const: 'hdfs' } } },
        then: {
          properties: {
            type: true,
            url: {
              type: 'string',
              pattern: '^https?://',
              description: "The NameNode's WebHDFS address, e.g. http://namenode:9870.",
            },
            user: {
              type: 'string',
              description: 'The HDFS user (simple authentication; default HADOOP_USER_NAME, else USER). Kerberos is not supported.',
            },
          },
          required: ['url'],
          additionalProperties: false,
        },
      },
    ],
  },
} as const;

/** The spec's named connections. */
export type Connections = Record<string, { type: string; [k: string]: unknown }>;

/** Checks that `name` is a connection of `type`; reports at `path` otherwise. */
export function checkConnection(
  ctx: { connections: Connections; error(path: (string | number)[], message: string, code?: string): void },
  path: (string | number)[],
  name: string,
  type: 'sql' | 'kafka' | 's3' | 'hdfs',
): void {
  const c = ctx.connections[name];
  if (!c) {
    const known = Object.keys(ctx.connections);
    ctx.error(
      path,
      `unknown connection "${name}"${known.length ? `; defined: ${known.join(', ')}` : ' (no connections are defined)'}`,
      'ref.connection',
    );
  } else if (c.type !== type)
    ctx.error(path, `connection "${name}" is ${c.type === 'kafka' ? 'a' : 'an'} ${c.type} connection, expected ${type}`, 'ref.connection');
}

export type Dialect = 'mysql' | 'postgres' | 'sqlite';

export function dialectOf(url: string): Dialect | undefined {
  if (/^(mysql|mariadb):\/\//i.test(url)) return 'mysql';
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  if (/^sqlite:/i.test(url) || /\.(db|sqlite3?)$/i.test(url)) return 'sqlite';
  return undefined;
}

export interface ConnectionConfig {
  type: string;
  url?: string;
  brokers?: string;
  clientId?: string;
  topicPrefix?: string;
  sessionTimeout?: string;
  pool?: number;
  tls?: boolean | { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export function connection(ctx: { connections: Connections }, name: string): ConnectionConfig {
  const c = ctx.connections[name];
  if (!c) throw new Error(`unknown connection ${name}`);
  return c as ConnectionConfig;
}

/** The topic's name on the cluster (with the connection's prefix). */
export const topicName = (conn: ConnectionConfig, topic: string) => `${conn.topicPrefix ?? ''}${topic}`;

/** Identifies a topic across connections, for ordering connected flows. */
export function topicId(connections: Record<string, { type: string }>, name: string, topic: string): string[] {
  const c = connections[name] as ConnectionConfig | undefined;
  return c ? [`${c.brokers}|${topicName(c, topic)}`] : [];
}

/** The same for a database: its URL (password masked) and the setting. */
export function sqlWhere(ctx: { connections: Connections; connectionLabels?: Record<string, string> }, name: string): string {
  return `${redact(connection(ctx, name).url ?? '')} (${ctx.connectionLabels?.[name] ?? `connection "${name}"`})`;
}
