import { z } from 'zod';
import { DEFAULT_PORTS } from '@flywheel/events';
import { loadConfig, serviceConfigShape } from '@flywheel/service-kit';

export const configSchema = z.object({
  ...serviceConfigShape,
  PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.content),
  /** The brand site's origin: canonical URLs and the sitemap are built on it. */
  CONTENT_SITE_URL: z.url().default('https://www.example.com'),
  /** How often each replica looks for scheduled items that are due. */
  CONTENT_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(15),
  /** How often each replica appends its in-memory view tally (a crash loses at most one interval of views). */
  CONTENT_VIEW_FLUSH_SECONDS: z.coerce.number().int().min(1).default(10),
});

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
