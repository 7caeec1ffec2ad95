import { z } from 'zod';
import { loadConfig, serviceConfigShape } from '@flywheel/service-kit';

/** Development default of the test provider's signing secret; refused in production. */
export const DEV_PAYMENT_TEST_SECRET = 'dev-only-test-payment-secret-0123456789abcdef';

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** Whole or fractional days (a fraction makes a short window for development and tests). */
const days = (fallback: number) => z.coerce.number().positive().max(365).default(fallback);

export const configSchema = z
  .object({
    ...serviceConfigShape,
    PORT: z.coerce.number().int().min(0).default(4003),
    /**
     * How long a request to catalog (quote, reserve, release) waits before answering UNAVAILABLE.
     * Generous on purpose: in a rush (a flash sale) reservations queue behind the SKU's gate, and
     * a buyer is better served waiting a few seconds than told to retry.
     */
    CATALOG_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    /** How long checkout waits for membership's benefits quote, lock and release. */
    MEMBERSHIP_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
    /** An order still unpaid this long after it was placed is cancelled (and its stock released). */
    ORDER_PAYMENT_TIMEOUT_SECONDS: seconds(900),
    /**
     * A checkout that reserved stock and has not finished after this long is presumed dead (its
     * process crashed) and released. Well above CATALOG_TIMEOUT_MS × the requests in a checkout.
     */
    CHECKOUT_RECOVERY_SECONDS: seconds(60),
    /** A shipped order the member did not confirm is delivered this long after its last parcel shipped. */
    AUTO_CONFIRM_DAYS: days(7),
    /**
     * After-sales can be requested any time before delivery and this long after it; then the
     * completion sweeper completes the order (one with an after-sale still open waits for it).
     */
    AFTER_SALE_WINDOW_DAYS: days(7),
    /** How often the sweepers run (unpaid orders, stuck checkouts, refunds, auto-confirm, completion). */
    SWEEP_INTERVAL_SECONDS: seconds(15),
    /** The payment provider adapter. Only the built-in test provider exists so far. */
    PAYMENT_PROVIDER: z.enum(['test']).default('test'),
    /** HMAC-SHA256 secret the test provider signs its callbacks with. */
    PAYMENT_TEST_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_PAYMENT_TEST_SECRET),
    /** Where the test provider POSTs callbacks; defaults to this process's own callback route. */
    PAYMENT_TEST_CALLBACK_URL: z.url().optional(),
  })
  .refine((c) => !(c.NODE_ENV === 'production' && c.PAYMENT_PROVIDER === 'test' && c.PAYMENT_TEST_SECRET === DEV_PAYMENT_TEST_SECRET), {
    path: ['PAYMENT_TEST_SECRET'],
    message: 'the development secret of the test payment provider can never be used in production',
  });

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
