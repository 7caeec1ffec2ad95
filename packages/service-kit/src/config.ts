import { z } from 'zod';

/** Settings every Flywheel process shares. Services extend this shape with their own. */
export const baseConfigShape = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * The address to listen on: loopback unless told otherwise, so a process started on a laptop
   * is not reachable from the network. Containers set 0.0.0.0 (the Dockerfile and the chart).
   */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Signs and verifies the gateway → subgraph internal token; shared by the gateway and every subgraph. */
  INTERNAL_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
};

export const serviceConfigShape = {
  ...baseConfigShape,
  MONGO_URL: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// URL'),
  /** Database name; defaults to flywheel_<service>. */
  MONGO_DB: z.string().optional(),
  /**
   * Set when MONGO_URL is FerretDB on its PostgreSQL handler (FLYWHEEL_DB=postgres): that
   * PostgreSQL database, where the service adds GIN indexes for its indexed fields at start.
   */
  FERRETDB_PG_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  NATS_URL: z.string().min(1),
};

/**
 * Parses the environment once. Every bad variable is reported at once, then the process exits
 * non-zero: a service never starts half-configured.
 */
export function loadConfig<T extends z.ZodType>(
  schema: T,
  env: NodeJS.ProcessEnv = process.env,
  exit: (code: number) => never = process.exit,
): z.infer<T> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    process.stderr.write(`flywheel: invalid configuration\n${lines.join('\n')}\n`);
    return exit(1);
  }
  return result.data;
}

/** A base64 value that decodes to at least `bytes` bytes (keys from secrets). */
export const base64Key = (bytes: number) =>
  z.string().refine((v) => Buffer.from(v, 'base64').length >= bytes, `must be base64 of at least ${bytes} bytes`);
