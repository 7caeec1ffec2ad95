import { z } from 'zod';
import { baseConfigShape, loadConfig } from '@flywheel/service-kit';
import { SERVICES } from '@flywheel/events';

const DEFAULT_PORTS: Record<(typeof SERVICES)[number], number> = {
  content: 4001,
  catalog: 4002,
  orders: 4003,
  live: 4004,
  community: 4005,
  membership: 4006,
  referral: 4007,
};

const subgraphUrls = Object.fromEntries(
  SERVICES.map((s) => [`${s.toUpperCase()}_URL`, z.url().default(`http://127.0.0.1:${DEFAULT_PORTS[s]}/graphql`)]),
) as Record<`${Uppercase<(typeof SERVICES)[number]>}_URL`, z.ZodDefault<z.ZodURL>>;

export const configSchema = z.object({
  ...baseConfigShape,
  ...subgraphUrls,
  PORT: z.coerce.number().int().min(0).default(4000),
  /** Verifies member and staff access tokens issued by membership. */
  AUTH_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
  /** The composed supergraph (checked in; a ConfigMap in Kubernetes). */
  SUPERGRAPH_PATH: z.string().optional(),
  MAX_QUERY_DEPTH: z.coerce.number().int().positive().default(12),
  MAX_QUERY_COST: z.coerce.number().int().positive().default(20_000),
  /** Requests per minute per identity (member, staff or client address), per gateway replica. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(1_200),
  /** Comma-separated browser origins allowed to call the API; empty = same-origin only. */
  CORS_ORIGINS: z.string().default(''),
});

export type Config = z.infer<typeof configSchema>;
export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
export const subgraphUrl = (config: Config, name: (typeof SERVICES)[number]): string =>
  config[`${name.toUpperCase()}_URL` as keyof Config] as string;
