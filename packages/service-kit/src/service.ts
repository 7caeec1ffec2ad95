import type { Connection } from 'mongoose';
import type { DocumentNode } from 'graphql';
import type { ServiceName } from '@flywheel/events';
import { connectBus, type Bus } from './bus';
import { ensureFerretGinIndexes } from './ferretdb-pg';
import { onShutdown } from './lifecycle';
import { createLogger, type Logger } from './logger';
import { connectMongo, ensureIndexes, mongoReady } from './mongo';
import { createOutboxRelay, type OutboxRelay } from './outbox';
import { startSubgraph, type BaseContext } from './subgraph';
import type { Route } from './http';
import type { InputBounds } from './input-bounds';
import { shutdownTelemetry } from './telemetry';
import type { Model } from 'mongoose';

export interface ServiceRuntimeConfig {
  NODE_ENV: 'development' | 'test' | 'production';
  LOG_LEVEL: string;
  HOST: string;
  PORT: number;
  INTERNAL_TOKEN_SECRET: string;
  SHUTDOWN_TIMEOUT_MS: number;
  MONGO_URL: string;
  MONGO_DB?: string;
  FERRETDB_PG_URL?: string;
  NATS_URL: string;
}

export interface ServiceParts<C extends BaseContext> {
  resolvers: unknown;
  context: (base: BaseContext) => C;
  /** Collections whose entries carry an `outbox` event. */
  outboxSources?: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Non-GraphQL HTTP routes on the service's port (they do their own authentication). */
  routes?: Route[];
  /** Runs once indexes exist and before the server listens: consumers, replies, bootstrap data. */
  init?: () => Promise<void>;
  /** Runs after the server stops accepting and before NATS drains (timers, sweepers). */
  stop?: () => Promise<void>;
}

export interface RunningService {
  name: ServiceName;
  port: number;
  url: string;
  db: Connection;
  bus: Bus;
  logger: Logger;
  relay: OutboxRelay | null;
  /** The ordered, bounded shutdown (also bound to SIGTERM/SIGINT when `handleSignals`). */
  stop(): Promise<void>;
}

/**
 * Composition of every subgraph process: mongo → models and indexes → NATS and streams →
 * consumers and replies (in `setup`) → outbox relay → HTTP. Shutdown runs the reverse, bounded.
 */
export async function runService<C extends BaseContext>(opts: {
  name: ServiceName;
  config: ServiceRuntimeConfig;
  typeDefs: string | DocumentNode;
  /** Size bounds of this service's inputs beyond the kit's defaults (`Type.field` / `Type.field(arg)`). */
  inputBounds?: InputBounds;
  setup: (deps: { db: Connection; bus: Bus; logger: Logger; kick: () => void }) => Promise<ServiceParts<C>>;
  handleSignals?: boolean;
}): Promise<RunningService> {
  const { name, config } = opts;
  const logger = createLogger(name, config.LOG_LEVEL);
  const db = await connectMongo(config.MONGO_URL, config.MONGO_DB ?? `flywheel_${name}`);
  const bus = await connectBus({ url: config.NATS_URL, service: name, logger, db });
  let relay: OutboxRelay | null = null;
  const parts = await opts.setup({ db, bus, logger, kick: () => relay?.kick() });
  await ensureIndexes(db);
  if (config.FERRETDB_PG_URL) {
    // FerretDB on PostgreSQL: its own btree indexes cannot serve its equality look-ups (ferretdb-pg.ts).
    const created = await ensureFerretGinIndexes(config.FERRETDB_PG_URL, db.name);
    if (created.length) logger.info({ gin: created.map((g) => `${g.collection}.${g.field}`) }, 'GIN indexes created');
  }
  await parts.init?.();
  if (parts.outboxSources?.length) relay = createOutboxRelay({ db, bus, sources: parts.outboxSources, logger });
  const subgraph = await startSubgraph<C>({
    name,
    port: config.PORT,
    host: config.HOST,
    typeDefs: opts.typeDefs,
    resolvers: parts.resolvers,
    context: parts.context,
    routes: parts.routes,
    inputBounds: opts.inputBounds,
    internalTokenSecret: config.INTERNAL_TOKEN_SECRET,
    ready: () => mongoReady(db) && bus.connected(),
    logger,
  });
  const steps = [
    { name: 'http', run: () => subgraph.stop() },
    { name: 'service', run: async () => parts.stop?.() },
    { name: 'outbox', run: async () => relay?.stop() },
    { name: 'nats', run: () => bus.drain() },
    { name: 'mongo', run: () => db.close() },
  ];
  let stop: () => Promise<void>;
  if (opts.handleSignals) {
    const trigger = onShutdown(logger, [...steps, { name: 'telemetry', run: shutdownTelemetry }], config.SHUTDOWN_TIMEOUT_MS);
    stop = () => trigger('stop()');
  } else {
    stop = async () => {
      for (const s of steps) await s.run().catch((err: unknown) => logger.warn({ err, step: s.name }, 'stop step failed'));
    };
  }
  return { name, port: subgraph.port, url: subgraph.url, db, bus, logger, relay, stop };
}
