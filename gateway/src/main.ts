import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, Server } from 'node:http';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { SERVICES } from '@flywheel/events';
import {
  createErrorFormatter,
  createHttpServer,
  createLogger,
  listen,
  onShutdown,
  sendJson,
  type Logger,
  type Route,
  type Viewer,
  runMain,
} from '@flywheel/service-kit';
import { shutdownTelemetry } from '@flywheel/service-kit/telemetry';
import type { GraphQLSchema } from 'graphql';
import { connect, type NatsConnection } from 'nats';
import { Agent } from 'undici';
import { authenticate, type GatewayContext } from './auth';
import { responseCachePlugins } from './cache';
import { loadGatewayConfig, subgraphUrl, type Config } from './config';
import { ideRoute } from './ide';
import { documentLimits } from './limits';
import { clientAddress, createRateLimiter, identityKey, sensitiveCallsPlugin } from './limiter';
import { createFeedHub, type FeedHub } from './feed-hub';
import { attachRealtime, httpSubscriptionsRefused } from './realtime';
import { boundedFetcher, keepAliveFetcher, SubgraphSource } from './subgraphs';

export type { GatewayContext } from './auth';

export const DEFAULT_SUPERGRAPH = join(__dirname, '../supergraph.graphql');

export interface RunningGateway {
  port: number;
  url: string;
  server: Server;
  logger: Logger;
  /** The live feeds' hub; null without NATS_URL. */
  hub: FeedHub | null;
  stop(): Promise<void>;
}

export async function start(config: Config, opts: { handleSignals?: boolean } = {}): Promise<RunningGateway> {
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const production = config.NODE_ENV === 'production';
  const supergraphSdl = readFileSync(config.SUPERGRAPH_PATH ?? DEFAULT_SUPERGRAPH, 'utf8');
  // One keep-alive pool to the subgraphs, at most 128 connections to each. undici does not use
  // node:http; its own instrumentation (service-kit telemetry) carries the trace context
  // gateway → subgraph.
  const subgraphConnections = new Agent({ connections: 128 });
  const fetcher = boundedFetcher(keepAliveFetcher(subgraphConnections), config.SUBGRAPH_TIMEOUT_MS);
  const known = new Set<string>(SERVICES);
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger,
    // Each fetch carries its subgraph document, so SubgraphSource reads the operation type
    // from the document rather than from the query text.
    queryPlannerConfig: { exposeDocumentNodeInFetchNode: true },
    buildService: ({ name }) => {
      if (!known.has(name)) throw new Error(`supergraph names unknown subgraph ${name}`);
      const url = subgraphUrl(config, name as (typeof SERVICES)[number]);
      return new SubgraphSource(name, url, config.INTERNAL_TOKEN_SECRET, fetcher, logger, config.SUBGRAPH_DEDUP);
    },
  });

  // Authenticated once per request, by the rate limit route, for the context to reuse.
  const callers = new WeakMap<IncomingMessage, GatewayContext>();
  const caller = (req: IncomingMessage, viewer: Viewer | null): GatewayContext => ({
    viewer,
    identity: identityKey(viewer?.id ?? null, clientAddress(req, config.TRUSTED_PROXY_HOPS)),
  });
  const limiter = createRateLimiter(config.RATE_LIMIT_PER_MINUTE);
  const origins = new Set(
    config.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
  );
  const cors: Route = (req, res) => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'origin');
      res.setHeader('access-control-allow-headers', 'authorization, content-type, apollo-require-preflight');
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return true;
    }
    return false;
  };
  const rateLimit: Route = (req, res) => {
    let context: GatewayContext;
    try {
      context = caller(req, authenticate(req, config.AUTH_TOKEN_SECRET));
      callers.set(req, context);
    } catch {
      // An invalid token is answered by the context below with UNAUTHENTICATED.
      context = caller(req, null);
    }
    const retry = limiter.take([[context.identity, 1]]);
    if (!retry) return false;
    res.setHeader('retry-after', String(retry));
    sendJson(res, 429, {
      errors: [{ message: 'Too many requests; slow down', extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retry } }],
    });
    return true;
  };

  let started = false;
  const server: Server = createHttpServer<GatewayContext>({
    apollo: () => apollo,
    ready: () => started,
    routes: [cors, ...(production ? [] : [ideRoute()]), rateLimit],
    context: async (req) => callers.get(req) ?? caller(req, authenticate(req, config.AUTH_TOKEN_SECRET)),
  });
  const limits = documentLimits(config);
  const apollo: ApolloServer<GatewayContext> = new ApolloServer<GatewayContext>({
    gateway,
    introspection: !production,
    hideSchemaDetailsFromClientErrors: production, // no "Did you mean …" field suggestions in production
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    // One operation per HTTP request: a batch would multiply what one request may do.
    allowBatchedHttpRequests: false,
    parseOptions: limits.parseOptions,
    validationRules: limits.validationRules,
    formatError: createErrorFormatter(logger),
    logger,
    plugins: [
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      httpSubscriptionsRefused(),
      sensitiveCallsPlugin({ fields: config.SENSITIVE_FIELDS, perMinute: config.SENSITIVE_CALLS_PER_MINUTE, logger }),
      ...responseCachePlugins({
        enabled: config.RESPONSE_CACHE,
        maxAgeSeconds: config.RESPONSE_CACHE_MAX_AGE_SECONDS,
        maxBytes: config.RESPONSE_CACHE_MAX_BYTES,
      }),
    ],
  });
  let apiSchema: GraphQLSchema | null = null;
  gateway.onSchemaLoadOrUpdate((s) => {
    apiSchema = s.apiSchema;
  });
  await apollo.start();

  // Subscriptions: the live rooms' feeds over WebSocket, fed by NATS (realtime.ts, feed-hub.ts).
  const run = async (query: string, variables: Record<string, unknown>, viewer: Viewer | null) => {
    const response = await apollo.executeOperation(
      { query, variables },
      { contextValue: { viewer, identity: viewer ? `id:${viewer.id}` : 'feed' } },
    );
    return response.body.kind === 'single' ? response.body.singleResult : { errors: [{ message: 'Unexpected incremental answer' }] };
  };
  let nc: NatsConnection | null = null;
  let hub: FeedHub | null = null;
  if (config.NATS_URL) {
    nc = await connect({ servers: config.NATS_URL, name: 'gateway', maxReconnectAttempts: -1 });
    hub = createFeedHub({ nc, logger, execute: (query, variables) => run(query, variables, null) });
  }
  const realtime = attachRealtime({
    server,
    hub,
    logger,
    limits: {
      perConnection: config.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      perIdentity: config.WS_MAX_CONNECTIONS_PER_IDENTITY,
      bufferedBytes: config.WS_MAX_BUFFERED_BYTES,
      maxPayload: 64 * 1024,
      flushMs: config.WS_FLUSH_MS,
    },
    parseOptions: limits.parseOptions,
    validationRules: limits.validationRules,
    apiSchema: () => apiSchema,
    authenticate: (header) => authenticate({ headers: { authorization: header } } as IncomingMessage, config.AUTH_TOKEN_SECRET),
    identity: (req, viewer) => caller(req, viewer).identity,
    allow: (identity) => limiter.take([[identity, 1]]) === 0,
    execute: run,
  });

  started = true;
  const port = await listen(server, config.PORT, config.HOST);
  logger.info({ port, subscriptions: Boolean(hub) }, 'gateway listening');

  const steps = [
    { name: 'websocket', run: () => realtime.close() },
    {
      name: 'feed',
      run: async () => {
        await hub?.close();
        await nc?.drain();
      },
    },
    { name: 'http', run: () => apollo.stop() },
    { name: 'subgraph connections', run: () => subgraphConnections.close() },
  ];
  let stop = async () => {
    for (const s of steps) await s.run();
  };
  if (opts.handleSignals) {
    const trigger = onShutdown(logger, [...steps, { name: 'telemetry', run: shutdownTelemetry }], config.SHUTDOWN_TIMEOUT_MS);
    stop = () => trigger('stop()');
  }
  return { port, url: `http://127.0.0.1:${port}/graphql`, server, logger, hub, stop };
}

if (require.main === module) runMain('gateway', () => start(loadGatewayConfig(), { handleSignals: true }));
