import { z } from 'zod';
import { DEFAULT_PORTS } from '@flywheel/events';
import { isTimeZone, loadConfig, serviceConfigShape } from '@flywheel/service-kit';

export const configSchema = z.object({
  ...serviceConfigShape,
  PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.community),
  /**
   * The zone of check-in challenge days: membership's loyalty program zone, which community cannot
   * read (no contract for it), so configured here; Asia/Shanghai is the program's default.
   */
  CHALLENGE_TIME_ZONE: z.string().default('Asia/Shanghai').refine(isTimeZone, 'an IANA time zone'),
});

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
