import type { EventHandlers } from '@flywheel/service-kit';
import type { TrialService } from './service';

/**
 * What ambassadors react to: the paid order that used a trial's coupon (ORDERED), and the showcase
 * of that order (SHOWCASED, community's own event). Both handlers are no-ops on a repeat by their
 * claims; `orders.order.paid` shares its durable consumer with the posts module (main.ts).
 */
export function trialHandlers(trials: TrialService): EventHandlers {
  return {
    'orders.order.paid': (env) => trials.orderPaid(env.data),
    'community.post.published': (env) => trials.postPublished(env.data),
  };
}
