import { z } from 'zod';
import { DEFAULT_PORTS } from '@flywheel/events';
import { loadConfig, serviceConfigShape } from '@flywheel/service-kit';

export const configSchema = z.object({
  ...serviceConfigShape,
  PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.catalog),
  /**
   * A stock reservation neither paid nor released by then is released by the sweeper. Longer than
   * orders' unpaid-order timeout, so orders cancels first and this only catches what was lost.
   */
  RESERVATION_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  /** How often the sweeper looks for expired reservations and ended flash sales. */
  STOCK_SWEEP_INTERVAL_SECONDS: z.coerce.number().positive().default(30),
  /**
   * Customers' browse reads (listings, facets, product and SKU detail, categories) answered from
   * an in-memory read model on every replica (storefront/); false reads the database every time.
   * Quotes and reservations read the database either way.
   */
  CATALOG_READ_MODEL: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** Replicas announce themselves this often; a missed change is noticed within about one interval. */
  CATALOG_READ_MODEL_HEARTBEAT_MS: z.coerce.number().int().min(50).default(1_000),
  /** The safety net: the whole read model is read again this often. */
  CATALOG_READ_MODEL_REFRESH_SECONDS: z.coerce.number().positive().default(60),
  /**
   * The flash-sale gate shared by every replica (flash-sales/gate.ts). Unset: each replica
   * keeps its own gate in memory (exact for one replica; with several, the ledger turns away what
   * the gates let through).
   */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  /** Keys of the shared gate start with this (one Redis may serve several deployments). */
  FLASH_GATE_KEY_PREFIX: z.string().min(1).default('flywheel:flash:'),
  /** A checkout's flash hold goes back to the gate if its reservation has not come by then. */
  FLASH_GATE_HOLD_SECONDS: z.coerce.number().positive().default(30),
});

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
