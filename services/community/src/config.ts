import { z } from 'zod';
import { DEFAULT_PORTS } from '@flywheel/events';
import { loadConfig, serviceConfigShape } from '@flywheel/service-kit';

export const configSchema = z.object({
  ...serviceConfigShape,
  PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.community),
});

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
