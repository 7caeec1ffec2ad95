import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import { dirname, join } from 'node:path';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import { OperationTypeNode, parse, type DocumentNode } from 'graphql';
import { AppError, createErrorFormatter } from './errors';
import { createHttpServer, listen, type Route } from './http';
import { boundInputs, type InputBounds } from './input-bounds';
import type { Logger } from './logger';
import { INTERNAL_TOKEN_HEADER, TokenError, verifyInternalToken, type Viewer } from './tokens';

export interface BaseContext {
  viewer: Viewer | null;
  logger: Logger;
}

export interface SubgraphOptions<C extends BaseContext> {
  name: string;
  port: number;
  host?: string;
  typeDefs: string | DocumentNode;
  // Generated resolver types are stricter than the map buildSubgraphSchema accepts.
  resolvers: unknown;
  /** Builds the per-request context (DataLoaders, services) from the verified viewer. */
  context: (base: BaseContext) => C;
  internalTokenSecret: string;
  ready: () => boolean | Promise<boolean>;
  logger: Logger;
  /** Non-GraphQL HTTP routes (e.g. a payment provider's signed callback), tried before /graphql. */
  routes?: Route[];
  /** Per-field size bounds beyond the kit's defaults (input-bounds.ts). */
  inputBounds?: InputBounds;
}

export interface RunningSubgraph {
  server: Server;
  port: number;
  url: string;
  /** Stops accepting and waits for in-flight requests. */
  stop(): Promise<void>;
}

/**
 * A Federation 2 subgraph on Apollo Server. Every request must carry a valid internal token
 * signed by the gateway for this subgraph — `_entities` and `_service` included.
 */
export async function startSubgraph<C extends BaseContext>(opts: SubgraphOptions<C>): Promise<RunningSubgraph> {
  const typeDefs = typeof opts.typeDefs === 'string' ? parse(opts.typeDefs) : opts.typeDefs;
  const schema = boundInputs(buildSubgraphSchema({ typeDefs, resolvers: opts.resolvers as GraphQLResolverMap<unknown> }), opts.inputBounds);
  const server: Server = createHttpServer<C>({
    apollo: () => apollo,
    ready: opts.ready,
    routes: opts.routes,
    context: async (req: IncomingMessage) => opts.context({ viewer: authenticate(req), logger: opts.logger }),
  });
  const apollo: ApolloServer<C> = new ApolloServer<C>({
    schema,
    introspection: false, // the gateway works from the composed supergraph file, never from introspection
    includeStacktraceInErrorResponses: false,
    hideSchemaDetailsFromClientErrors: true,
    formatError: createErrorFormatter(opts.logger),
    csrfPrevention: true,
    plugins: [ApolloServerPluginLandingPageDisabled(), ApolloServerPluginDrainHttpServer({ httpServer: server }), viewerAnswersArePrivate],
    logger: opts.logger,
  });
  await apollo.start();
  const port = await listen(server, opts.port, opts.host ?? '0.0.0.0');
  opts.logger.info({ port }, `${opts.name} subgraph listening`);
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}/graphql`,
    // Apollo's drain plugin stops accepting, then waits for in-flight requests.
    stop: () => apollo.stop(),
  };

  function authenticate(req: IncomingMessage): Viewer | null {
    const token = req.headers[INTERNAL_TOKEN_HEADER];
    if (typeof token !== 'string' || !token)
      throw new AppError('UNAUTHENTICATED', 'Subgraphs answer only the gateway', { http: { status: 401 } });
    try {
      return verifyInternalToken(token, opts.internalTokenSecret, opts.name);
    } catch (err) {
      const reason = err instanceof TokenError ? err.reason : 'invalid';
      throw new AppError('UNAUTHENTICATED', `Invalid internal token (${reason})`, { http: { status: 401 } });
    }
  }
}

/**
 * The schema's @cacheControl hints say what anyone may see. An answer computed for a viewer (staff
 * see drafts) is theirs alone, and a mutation's is never reused: Apollo's cache control plugin
 * (on by default) puts both so in the cache-control header the gateway reads.
 */
const viewerAnswersArePrivate: ApolloServerPlugin<BaseContext> = {
  async requestDidStart() {
    return {
      async executionDidStart({ operation, contextValue, overallCachePolicy }) {
        return {
          async executionDidEnd() {
            if (operation.operation !== OperationTypeNode.QUERY) overallCachePolicy.restrict({ maxAge: 0 });
            else if (contextValue.viewer) overallCachePolicy.restrict({ scope: 'PRIVATE' });
          },
        };
      },
    };
  },
};

/**
 * A subgraph's SDL from its core `schema.graphql` and the `schema.graphql` of each module folder
 * beside it (`src/<module>/schema.graphql`, which extend the core types), in name order: the same
 * files `scripts/schema-files.js` gives codegen and supergraph composition.
 */
export function readSchema(coreFile: string): string {
  const src = dirname(coreFile);
  const modules = readdirSync(src, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('_') && existsSync(join(src, d.name, 'schema.graphql')))
    .map((d) => join(src, d.name, 'schema.graphql'))
    .sort();
  return [coreFile, ...modules].map((f) => readFileSync(f, 'utf8')).join('\n');
}
