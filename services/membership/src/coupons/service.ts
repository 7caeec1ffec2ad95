import { createKeyQueue } from '@flywheel/service-kit';
import type { ModuleDeps } from '../modules';
import { createIssuing } from './issuing';
import { createCouponLedger, type CouponContext } from './ledger';
import { createCouponModels } from './model';
import { createTemplates } from './templates';
import { createWallet } from './wallet';

export { viewState, type CouponOfferView, type CouponViewState, type WalletShape, type WalletSummary } from './wallet';

/**
 * Coupons, composed from the module's parts: templates and their quota and member slots
 * (templates.ts), issuing by claim and grant (issuing.ts), each coupon's ledger of transitions
 * (ledger.ts) and the member's wallet with the offers it makes a checkout (wallet.ts).
 */
export function createCouponService(deps: ModuleDeps) {
  const m = createCouponModels(deps.db);
  // In-process serialisation: one coupon's transitions queue instead of retrying appends. Across
  // replicas the unique inserts still decide; the queues only save wasted attempts.
  const ctx: CouponContext = { ...deps, m, couponQueue: createKeyQueue().run };
  const ledger = createCouponLedger(ctx);
  const templates = createTemplates(ctx);
  const { grant, claim, grantByStaff, revokeGrant } = createIssuing(ctx, ledger, templates);
  const { offers, offer, ...wallet } = createWallet(ctx, ledger, templates);
  const { lock, release, consume, restore } = ledger;

  const coupons = { grant, offers, offer, lock, release, consume, restore };

  return {
    coupons,
    models: m,
    template: templates.template,
    ...wallet,
    remaining: templates.remaining,
    templateFor: templates.templateFor,
    listTemplates: templates.listTemplates,
    createTemplate: templates.createTemplate,
    stopTemplate: templates.stopTemplate,
    claim,
    grantByStaff,
    revokeGrant,
  };
}

export type CouponsService = ReturnType<typeof createCouponService>;
