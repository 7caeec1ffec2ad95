import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import { claimedSweeper, readSchema, runService, type RunningService, runMain } from '@flywheel/service-kit';
import type { CheckoutHooks } from './checkout';
import type { QuoteAdjuster } from './checkout/pricing';
import { createAddressBook, createMembershipAdjuster, type AddressBook } from './clients/membership';
import { createReferralAdjuster } from './clients/referral';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModules, sweepers, type OrderService } from './modules';
import { createOrderLoaders } from './order/service';
import { paymentCallbackRoute, startCallbackListener, testPaymentSimulateRoute } from './payments/routes';
import { createTestPaymentProvider, type TestPaymentProvider } from './payments/test-provider';
import { mergeResolvers } from './resolvers';
import type { Context } from './service';

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

export type { OrderService } from './modules';

export interface StartOptions {
  handleSignals?: boolean;
  /** Fault injection for tests of the checkout saga (crash between reserve and order). */
  hooks?: CheckoutHooks;
  /** Checkout pricing adjusters; membership's benefits by default (tests of orders alone pass []). */
  adjusters?: QuoteAdjuster[];
  /**
   * Where checkout reads shipping addresses; membership's book by default. Null (tests of orders
   * alone, with no membership to answer): orders carry no address and the default rule prices them.
   */
  addresses?: AddressBook | null;
  /** Run the sweepers on their timer (default); tests drive them by hand instead. */
  sweepers?: boolean;
}

export interface RunningOrders extends RunningService {
  service: OrderService;
  /** The built-in test provider (PAYMENT_PROVIDER=test): tests and development "pay" through it. */
  payments: TestPaymentProvider;
  /** The callback listener's port (PAYMENT_CALLBACK_PORT), or null when the callback is served on `port`. */
  callbackPort: number | null;
}

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningOrders> {
  let service!: OrderService;
  let provider!: TestPaymentProvider;
  let port = config.PORT;
  const listener: { callback: Awaited<ReturnType<typeof startCallbackListener>> | null } = { callback: null };
  const running = await runService<Context>({
    name: 'orders',
    config,
    typeDefs,
    // Beyond the kit's default 200 characters: after-sales reasons and staff notes.
    inputBounds: {
      'RequestAfterSaleInput.reason': { maxLength: 500 },
      'ApproveAfterSaleInput.note': { maxLength: 500 },
      'RejectAfterSaleInput.note': { maxLength: 500 },
    },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick, logger }) {
      provider = createTestPaymentProvider({
        db,
        // Present whenever PAYMENT_PROVIDER is test (config.ts refuses to start otherwise).
        secret: config.PAYMENT_TEST_SECRET!,
        callbackUrl: () => config.PAYMENT_TEST_CALLBACK_URL ?? `http://127.0.0.1:${listener.callback?.port ?? port}/payments/test/callback`,
      });
      const modules = createModules({
        db,
        bus,
        kick,
        config,
        logger,
        now: () => new Date(),
        provider,
        // Referral's offer price first: coupon thresholds and points caps see the group-buy or bargain price.
        adjusters: opts.adjusters ?? [
          createReferralAdjuster(bus, config.MEMBERSHIP_TIMEOUT_MS),
          createMembershipAdjuster(bus, config.MEMBERSHIP_TIMEOUT_MS),
        ],
        addresses: opts.addresses === undefined ? createAddressBook(bus, config.MEMBERSHIP_TIMEOUT_MS) : opts.addresses,
        hooks: opts.hooks ?? {},
      });
      const { models } = modules.order;
      service = sweepers(modules);

      // One pass at a time; a pass still running when the timer fires is not doubled. Every
      // replica runs the timer; one of them takes each period's pass (a claim per period), so
      // scaling out multiplies neither the sweeps nor reconciliation's queries to the provider.
      // A pass is idempotent either way.
      const sweeper = claimedSweeper({
        claims: models.SweepClaim,
        periodMs: config.SWEEP_INTERVAL_SECONDS * 1000,
        now: () => new Date(),
        run: (at) => service.sweep(at),
        logger,
      });
      const callbackRoute = paymentCallbackRoute({
        provider: provider.name,
        handle: (raw, headers) => modules.payments.payments.handleCallback(raw, headers),
        logger,
      });

      return {
        resolvers: mergeResolvers(Object.values(modules).map((m) => m.resolvers)),
        context: (base) => ({ ...base, loaders: createOrderLoaders(models) }),
        outboxSources: [models.Order, models.OrderTransition],
        routes: [
          // With a listener of its own, the callback is served there only (one way in for the provider).
          ...(config.PAYMENT_CALLBACK_PORT === undefined ? [callbackRoute] : []),
          // Development and tests only: never mounted in production.
          ...(config.NODE_ENV === 'production' ? [] : [testPaymentSimulateRoute(provider, logger)]),
        ],
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          await registerConsumers({ bus, handlers: [modules.shipping.on, modules.groupbuy.on] });
          if (config.PAYMENT_CALLBACK_PORT !== undefined) {
            listener.callback = await startCallbackListener({
              routes: [callbackRoute],
              host: config.HOST,
              port: config.PAYMENT_CALLBACK_PORT,
              logger,
            });
          }
          if (opts.sweepers ?? true) sweeper.start();
        },
        stop: async () => {
          await listener.callback?.stop();
          await sweeper.stop();
        },
      };
    },
  });
  port = running.port;
  return { ...running, service, payments: provider, callbackPort: listener.callback?.port ?? null };
}

if (require.main === module) runMain('orders', () => start(loadServiceConfig(), { handleSignals: true }));
