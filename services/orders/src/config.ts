import { z } from 'zod';
import { DEFAULT_PORTS } from '@flywheel/events';
import { base64Key, loadConfig, serviceConfigShape } from '@flywheel/service-kit';

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const count = (fallback: number) => z.coerce.number().int().positive().max(10_000).default(fallback);
/** Whole or fractional days (a fraction makes a short window for development and tests). */
const days = (fallback: number) => z.coerce.number().positive().max(365).default(fallback);

export const configSchema = z
  .object({
    ...serviceConfigShape,
    PORT: z.coerce.number().int().min(0).default(DEFAULT_PORTS.orders),
    /**
     * AES-256-GCM key (base64, 32 bytes) for the shipping address an order keeps (recipient,
     * phone, detail line). Orders' own secret; may be the same value as membership's.
     */
    PII_ENCRYPTION_KEY: base64Key(32),
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
    /**
     * Unpaid orders hold stock until paid or cancelled: without a cap one member can hold a SKU's
     * whole stock in unpaid orders and renew the hold every ORDER_PAYMENT_TIMEOUT_SECONDS. A
     * checkout over a cap is refused before anything is reserved; paying, cancelling or the
     * expiry of an order frees its share. Orders a member may have waiting for payment at once.
     */
    MAX_UNPAID_ORDERS_PER_MEMBER: count(3),
    /** Units (all SKUs together) one member may hold in unpaid orders: a generous basket, not a SKU's stock. */
    MAX_UNPAID_UNITS_PER_MEMBER: count(30),
    /**
     * Units of one SKU bought at a flash price that one member may hold unpaid, across flash
     * sales. Each flash sale's own per-member limit (at most 5, set by staff) still applies; this
     * bounds what overlapping or back-to-back sales of one SKU can be held by one member.
     */
    MAX_UNPAID_FLASH_UNITS_PER_SKU: count(5),
    /** The payment provider adapter. Only the built-in test provider exists so far. */
    PAYMENT_PROVIDER: z.enum(['test']).default('test'),
    /**
     * HMAC-SHA256 secret the test provider signs its callbacks with. Required with the test
     * provider, in every environment: there is no built-in value (npm start generates one into
     * .data/secrets.json, the test helpers a random one per run).
     */
    PAYMENT_TEST_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Where the test provider POSTs callbacks; defaults to this process's own callback route. */
    PAYMENT_TEST_CALLBACK_URL: z.url().optional(),
    /**
     * A listener of its own for the provider's callback (`POST /payments/<provider>/callback`),
     * serving nothing else: what is exposed to the provider (an Ingress path, a NetworkPolicy
     * rule for the ingress controller) reaches only that route, never GraphQL. Unset: the callback
     * is served on PORT, next to GraphQL (local development). 0 picks a free port (tests).
     */
    PAYMENT_CALLBACK_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    /**
     * A payment intent with no callback this long after it was created is asked about at the
     * provider (reconciliation, on the sweeper's cadence): a charge whose callback was lost is
     * applied as the callback would have been, or refunded if the order was cancelled meanwhile.
     */
    PAYMENT_RECONCILE_AFTER_SECONDS: seconds(60),
  })
  .refine((c) => c.PAYMENT_PROVIDER !== 'test' || c.PAYMENT_TEST_SECRET !== undefined, {
    path: ['PAYMENT_TEST_SECRET'],
    message: 'is required with PAYMENT_PROVIDER=test (its callbacks are signed with it); generate one, e.g. `openssl rand -base64 48`',
  })
  .refine((c) => c.PAYMENT_CALLBACK_PORT === undefined || c.PAYMENT_CALLBACK_PORT === 0 || c.PAYMENT_CALLBACK_PORT !== c.PORT, {
    path: ['PAYMENT_CALLBACK_PORT'],
    message: 'must differ from PORT (it is a listener of its own)',
  });

export type Config = z.infer<typeof configSchema>;
export const loadServiceConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(configSchema, env);
