import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import { claimedSweeper, mergeResolvers, piiKeys, readSchema, runService, type RunningService, runMain } from '@flywheel/service-kit';
import { createAddressesModule } from './addresses';
import { createBenefitsModule } from './benefits';
import { loadServiceConfig, type Config } from './config';
import { createCouponsModule } from './coupons';
import { registerConsumers } from './events';
import { createLoyaltyModule } from './loyalty';
import { createModels } from './model';
import { coalesced, type MembershipModule } from './modules';
import { resolvers as coreResolvers } from './resolvers';
import { createRfmModule } from './rfm';
import { createMembershipService, devCodeSender, noCodeSender, type Context, type MembershipService } from './service';
import { createSettings } from './settings';

/** The longest an outbox entry waits for the relay's pass after it is written (then the relay's own timer). */
const KICK_WINDOW_MS = 50;

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

export interface StartOptions {
  handleSignals?: boolean;
  /** Run the sweepers on their timer (default); tests drive `sweep` by hand instead. */
  sweepers?: boolean;
  /** The clock of every module (tests move it to a member day, a birthday, past an expiry). */
  now?: () => Date;
}

export interface RunningMembership extends RunningService {
  service: MembershipService;
  modules: Modules;
  /** One pass of every module's periodic work. */
  sweep(at?: Date): Promise<Record<string, Record<string, number>>>;
}

export type Modules = ReturnType<typeof createModules>;

function createModules(
  deps: Parameters<typeof createCouponsModule>[0] & { models: ReturnType<typeof createModels>; piiEncryptionKey: string },
) {
  const coupons = createCouponsModule(deps);
  const loyalty = createLoyaltyModule({ ...deps, coupons: coupons.coupons });
  const rfm = createRfmModule(deps);
  const benefits = createBenefitsModule({ ...deps, coupons: coupons.coupons, loyalty: loyalty.loyalty });
  const addresses = createAddressesModule(deps);
  return { coupons, loyalty, rfm, benefits, addresses };
}

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningMembership> {
  let service!: MembershipService;
  let modules!: Modules;
  const now = opts.now ?? (() => new Date());
  const sweep = async (at: Date = now()) => {
    const out: Record<string, Record<string, number>> = {};
    for (const m of Object.values(modules) as MembershipModule[]) if (m.sweep) out[m.name] = await m.sweep(at);
    return out;
  };
  const running = await runService<Context>({
    name: 'membership',
    config,
    typeDefs,
    // Tighter than the kit's defaults where the format is known: an invite code is 8 characters
    // (referral's alphabet; a few more for what people paste), a phone number fits in 20.
    inputBounds: {
      'LoginInput.inviteCode': { maxLength: 16 },
      'LoginInput.phone': { maxLength: 20 },
      'RequestLoginCodeInput.phone': { maxLength: 20 },
      'LoginInput.code': { maxLength: 6 },
      'StaffLoginInput.email': { maxLength: 254 },
      'CreateStaffAccountInput.email': { maxLength: 254 },
    },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick: kickNow, logger }) {
      // Events from the outbox are published within this much of their entry, a burst by one pass.
      const kick = coalesced(kickNow, KICK_WINDOW_MS);
      const models = createModels(db);
      const settings = createSettings(db);
      service = createMembershipService({
        models,
        pii: piiKeys(config.PII_ENCRYPTION_KEY, config.PII_LOOKUP_KEY),
        codes: config.DEV_LOGIN_CODES ? devCodeSender : noCodeSender,
        authSecret: config.AUTH_TOKEN_SECRET,
        accessTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
        refreshTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
        codeTtlSeconds: config.LOGIN_CODE_TTL_SECONDS,
        codesPerDay: config.LOGIN_CODES_PER_DAY,
        codeIntervalSeconds: config.LOGIN_CODE_INTERVAL_SECONDS,
        codeMaxIntervalSeconds: config.LOGIN_CODE_MAX_INTERVAL_SECONDS,
        staffLoginMaxFailures: config.STAFF_LOGIN_MAX_FAILURES,
        staffLoginWindowSeconds: config.STAFF_LOGIN_WINDOW_SECONDS,
        kick,
        now,
      });
      modules = createModules({ db, bus, logger, settings, kick, now, models, piiEncryptionKey: config.PII_ENCRYPTION_KEY });
      const list = Object.values(modules) as MembershipModule[];

      // Every replica runs the timer; one of them takes each period's pass (kit: claimedSweeper).
      const sweeper = claimedSweeper({ claims: models.Claim, periodMs: config.SWEEP_INTERVAL_SECONDS * 1000, now, run: sweep, logger });

      return {
        resolvers: mergeResolvers([coreResolvers, ...list.map((m) => m.resolvers)]),
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        outboxSources: [models.Member, ...list.flatMap((m) => m.outboxSources ?? [])],
        init: async () => {
          const renamed = await service.renamePhoneNicknames();
          if (renamed) logger.info({ renamed }, 'default nicknames no longer carry phone digits');
          for (const m of list) await m.init?.();
          await registerConsumers({ bus, modules: list });
          if (config.BOOTSTRAP_STAFF_EMAIL && config.BOOTSTRAP_STAFF_PASSWORD) {
            await service.ensureStaff(config.BOOTSTRAP_STAFF_EMAIL, 'Administrator', config.BOOTSTRAP_STAFF_PASSWORD);
          }
          if (opts.sweepers ?? true) sweeper.start();
        },
        stop: async () => {
          await sweeper.stop();
        },
      };
    },
  });
  return { ...running, service, modules, sweep };
}

if (require.main === module) runMain('membership', () => start(loadServiceConfig(), { handleSignals: true }));
