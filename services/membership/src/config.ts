import { z } from 'zod';
import { DEFAULT_PORTS } from '@flywheel/events';
import { base64Key, loadConfig, serviceConfigShape } from '@flywheel/service-kit';

export const configSchema = z
  .object({
    ...serviceConfigShape,
    PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.membership),
    /** Signs member and staff access tokens; the gateway verifies them with the same secret. */
    AUTH_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
    /** AES-256-GCM key for phone numbers at rest (base64, 32 bytes). */
    PII_ENCRYPTION_KEY: base64Key(32),
    /** HMAC key for phone look-ups (base64, ≥ 32 bytes). */
    PII_LOOKUP_KEY: base64Key(32),
    /** Returns login codes in the API response instead of sending an SMS. Refused in production. */
    DEV_LOGIN_CODES: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce
      .number()
      .int()
      .positive()
      .default(15 * 60),
    REFRESH_TOKEN_TTL_SECONDS: z.coerce
      .number()
      .int()
      .positive()
      .default(30 * 24 * 3600),
    LOGIN_CODE_TTL_SECONDS: z.coerce
      .number()
      .int()
      .positive()
      .default(5 * 60),
    /** Minimum seconds between two codes for one phone. */
    LOGIN_CODE_INTERVAL_SECONDS: z.coerce.number().int().positive().default(60),
    /**
     * Codes per phone per UTC day at LOGIN_CODE_INTERVAL_SECONDS. Not a refusal: anyone can ask
     * codes for any phone, so a hard daily cap would let a stranger lock the member out for the
     * day. Past it each wait doubles, up to LOGIN_CODE_MAX_INTERVAL_SECONDS.
     */
    LOGIN_CODES_PER_DAY: z.coerce.number().int().positive().default(10),
    /** The longest wait between two codes for one phone: the bound on a member's wait for a fresh code. */
    LOGIN_CODE_MAX_INTERVAL_SECONDS: z.coerce.number().int().positive().default(3600),
    /** Wrong passwords per staff account per window; then RATE_LIMITED until the window ends. */
    STAFF_LOGIN_MAX_FAILURES: z.coerce.number().int().positive().default(5),
    STAFF_LOGIN_WINDOW_SECONDS: z.coerce
      .number()
      .int()
      .positive()
      .default(15 * 60),
    /** How often points expiry, RFM re-evaluation and tier retention run (each pass is idempotent). */
    SWEEP_INTERVAL_SECONDS: z.coerce.number().int().positive().default(300),
    /** First staff account, created at start-up if its email is new (operators add the rest). */
    BOOTSTRAP_STAFF_EMAIL: z.email().optional(),
    BOOTSTRAP_STAFF_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  })
  .refine((c) => Boolean(c.BOOTSTRAP_STAFF_EMAIL) === Boolean(c.BOOTSTRAP_STAFF_PASSWORD), {
    path: ['BOOTSTRAP_STAFF_PASSWORD'],
    message: 'BOOTSTRAP_STAFF_EMAIL and BOOTSTRAP_STAFF_PASSWORD go together',
  })
  .refine((c) => c.LOGIN_CODE_MAX_INTERVAL_SECONDS >= c.LOGIN_CODE_INTERVAL_SECONDS, {
    path: ['LOGIN_CODE_MAX_INTERVAL_SECONDS'],
    message: 'must be at least LOGIN_CODE_INTERVAL_SECONDS',
  })
  .refine((c) => !(c.NODE_ENV === 'production' && c.DEV_LOGIN_CODES), {
    path: ['DEV_LOGIN_CODES'],
    message: 'the development code provider can never be enabled in production',
  });

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
