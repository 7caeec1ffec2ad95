import type { Bus } from '@flywheel/service-kit';

/**
 * Orders consumes nothing yet: group-buy outcomes (`referral.groupbuy.*`) arrive with the
 * checkout saga. It publishes `orders.order.placed` through the outbox on the Order insert itself
 * and asks catalog for prices over request/reply (`catalog.price.quote`, see service.ts).
 */
export async function registerConsumers(_deps: { bus: Bus }): Promise<void> {}
