import { z } from 'zod';
import { loadConfig, serviceConfigShape } from '@flywheel/service-kit';

export const configSchema = z.object({
  ...serviceConfigShape,
  PORT: z.coerce.number().int().min(0).default(4002),
  /**
   * A stock reservation neither paid nor released by then is released by the sweeper. Longer than
   * orders' unpaid-order timeout, so orders cancels first and this only catches what was lost.
   */
  RESERVATION_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  /** How often the sweeper looks for expired reservations and ended flash sales. */
  STOCK_SWEEP_INTERVAL_SECONDS: z.coerce.number().positive().default(30),
});

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
