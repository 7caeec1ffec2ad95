import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { createAfterSaleModels } from './aftersales/model';
import { createCartModels } from './cart/model';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createMembershipAdjuster } from './membership';
import { createModels } from './model';
import { createPaymentModels } from './payments/model';
import { paymentCallbackRoute, testPaymentSimulateRoute } from './payments/routes';
import { createTestPaymentProvider, type TestPaymentProvider } from './payments/test-provider';
import type { QuoteAdjuster } from './pricing';
import { resolvers } from './resolvers';
import { createOrderService, type CheckoutHooks, type Context, type OrderService } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export interface StartOptions {
  handleSignals?: boolean;
  /** Fault injection for tests of the checkout saga (crash between reserve and order). */
  hooks?: CheckoutHooks;
  /** Checkout pricing adjusters; membership's benefits by default (tests of orders alone pass []). */
  adjusters?: QuoteAdjuster[];
  /** Run the sweepers on their timer (default); tests drive them by hand instead. */
  sweepers?: boolean;
}

export interface RunningOrders extends RunningService {
  service: OrderService;
  /** The built-in test provider (PAYMENT_PROVIDER=test): tests and development "pay" through it. */
  payments: TestPaymentProvider;
}

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningOrders> {
  let service!: OrderService;
  let provider!: TestPaymentProvider;
  let port = config.PORT;
  const running = await runService<Context>({
    name: 'orders',
    config,
    typeDefs,
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick, logger }) {
      const models = createModels(db);
      provider = createTestPaymentProvider({
        db,
        secret: config.PAYMENT_TEST_SECRET,
        callbackUrl: () => config.PAYMENT_TEST_CALLBACK_URL ?? `http://127.0.0.1:${port}/payments/test/callback`,
      });
      service = createOrderService({
        models,
        cartModels: createCartModels(db),
        paymentModels: createPaymentModels(db),
        afterSaleModels: createAfterSaleModels(db),
        bus,
        kick,
        provider,
        catalogTimeoutMs: config.CATALOG_TIMEOUT_MS,
        paymentTimeoutSeconds: config.ORDER_PAYMENT_TIMEOUT_SECONDS,
        checkoutRecoverySeconds: config.CHECKOUT_RECOVERY_SECONDS,
        autoConfirmDays: config.AUTO_CONFIRM_DAYS,
        afterSaleWindowDays: config.AFTER_SALE_WINDOW_DAYS,
        adjusters: opts.adjusters ?? [createMembershipAdjuster(bus, config.MEMBERSHIP_TIMEOUT_MS)],
        hooks: opts.hooks,
        logger,
      });

      // One pass at a time; a pass still running when the timer fires is not doubled.
      let timer: NodeJS.Timeout | undefined;
      let pass: Promise<unknown> = Promise.resolve();
      const tick = () => {
        pass = service.sweep().catch((err: unknown) => logger.warn({ err }, 'sweep failed'));
        void pass.finally(() => {
          if (timer) timer = setTimeout(tick, config.SWEEP_INTERVAL_SECONDS * 1000).unref();
        });
      };

      return {
        resolvers,
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        outboxSources: [models.Order, models.OrderTransition],
        routes: [
          paymentCallbackRoute({ provider: provider.name, handle: (raw, headers) => service.handlePaymentCallback(raw, headers), logger }),
          ...(config.NODE_ENV === 'production' ? [] : [testPaymentSimulateRoute(provider, logger)]),
        ],
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          await registerConsumers({ bus });
          if (opts.sweepers ?? true) timer = setTimeout(tick, config.SWEEP_INTERVAL_SECONDS * 1000).unref();
        },
        stop: async () => {
          clearTimeout(timer);
          timer = undefined;
          await pass;
        },
      };
    },
  });
  port = running.port;
  return { ...running, service, payments: provider };
}

if (require.main === module) runMain('orders', () => start(loadServiceConfig(), { handleSignals: true }));
