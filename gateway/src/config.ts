import { z } from 'zod';
import { baseConfigShape, loadConfig } from '@flywheel/service-kit';
import { DEFAULT_PORTS, SERVICES } from '@flywheel/events';

const subgraphUrls = Object.fromEntries(
  SERVICES.map((s) => [`${s.toUpperCase()}_URL`, z.url().default(`http://127.0.0.1:${DEFAULT_PORTS[s]}/graphql`)]),
) as Record<`${Uppercase<(typeof SERVICES)[number]>}_URL`, z.ZodDefault<z.ZodURL>>;

export const configSchema = z.object({
  ...baseConfigShape,
  ...subgraphUrls,
  PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.gateway),
  /** Verifies member and staff access tokens issued by membership. */
  AUTH_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
  /** The composed supergraph (checked in; a ConfigMap in Kubernetes). */
  SUPERGRAPH_PATH: z.string().optional(),
  // Every limit a document is checked against before anything runs (limits.ts); one place.
  /** Nested fields, fragments flattened. */
  MAX_QUERY_DEPTH: z.coerce.number().int().positive().default(12),
  /** Estimated fields resolved; page sizes multiply what is under them (limits.ts). */
  MAX_QUERY_COST: z.coerce.number().int().positive().default(20_000),
  /** Aliased fields per operation, counted through fragments at every spread. */
  MAX_ALIASES: z.coerce.number().int().nonnegative().default(15),
  /** Directives per operation (@include, @skip), counted through fragments at every spread. */
  MAX_DIRECTIVES: z.coerce.number().int().nonnegative().default(25),
  /** Lexical tokens per document; the parser stops at the limit, so a huge document costs little. */
  MAX_QUERY_TOKENS: z.coerce.number().int().positive().default(2_000),
  /** Requests per minute per identity (member, staff or client address), per gateway replica. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(1_200),
  /**
   * Root fields that send a message, sign someone in or hand out value: each call (every alias)
   * takes one from the caller's per-field budget, however many share one HTTP request.
   */
  SENSITIVE_FIELDS: z
    .string()
    .default('requestLoginCode,login,staffLogin,refreshSession,claimCoupon,claimTaskReward,signIn')
    .transform((s) =>
      s
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[_A-Za-z][_0-9A-Za-z]*$/, 'must be GraphQL field names, comma-separated'))),
  /** Calls per minute of each sensitive field per identity (member, staff or client address), per replica. */
  SENSITIVE_CALLS_PER_MINUTE: z.coerce.number().int().positive().default(10),
  /**
   * Proxies in front of the gateway that append to X-Forwarded-For (an ingress: 1). 0 ignores the
   * header: the client is the socket's peer. Set it higher than the real count and clients can
   * pick their own rate-limit bucket.
   */
  TRUSTED_PROXY_HOPS: z.coerce.number().int().nonnegative().default(0),
  /** Bound on each gateway → subgraph request, connect to last byte; past it the fields are UNAVAILABLE. */
  SUBGRAPH_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /**
   * A subgraph query identical to one still in flight (same subgraph, query, variables and
   * viewer) shares that one's answer instead of being sent again. Never mutations; nothing is kept
   * afterwards (that is RESPONSE_CACHE).
   */
  SUBGRAPH_DEDUP: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /**
   * Anonymous queries whose every field the subgraphs hint as public (@cacheControl) are answered
   * from memory until the shortest hint, at most RESPONSE_CACHE_MAX_AGE_SECONDS, runs out
   * (cache.ts). Never a request with a viewer, never a mutation. false turns the cache off; the
   * cache-control headers stay.
   */
  RESPONSE_CACHE: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** The longest any answer is reused, here or by clients (cache-control max-age); 0 caches nothing. */
  RESPONSE_CACHE_MAX_AGE_SECONDS: z.coerce.number().int().nonnegative().default(5),
  /** Memory for cached answers, per replica (measured as characters of their JSON); least recently used go first. */
  RESPONSE_CACHE_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(32 * 1024 * 1024),
  /**
   * NATS, for the live rooms' feeds behind GraphQL subscriptions (WebSocket, /graphql). Unset: the
   * gateway serves no subscriptions (they answer UNAVAILABLE); queries and mutations are unaffected.
   */
  NATS_URL: z.string().min(1).optional(),
  /** Subscriptions open at once on one WebSocket connection. */
  WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: z.coerce.number().int().positive().default(5),
  /** WebSocket connections open at once per identity (member, staff or client address), per replica. */
  WS_MAX_CONNECTIONS_PER_IDENTITY: z.coerce.number().int().positive().default(10),
  /** Bytes queued for one WebSocket that does not read before the gateway closes it (a slow viewer). */
  WS_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /**
   * Feed frames due to one WebSocket within this many milliseconds are written together (one
   * system call per viewer per interval instead of per event); 0 writes each at once.
   */
  WS_FLUSH_MS: z.coerce.number().int().nonnegative().max(1000).default(50),
  /** Comma-separated browser origins allowed to call the API; empty = same-origin only. */
  CORS_ORIGINS: z.string().default(''),
});

export type Config = z.infer<typeof configSchema>;
export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
export const subgraphUrl = (config: Config, name: (typeof SERVICES)[number]): string =>
  config[`${name.toUpperCase()}_URL` as keyof Config] as string;
