import type { Bus } from '@flywheel/service-kit';

/**
 * Orders consumes nothing yet: group-buy outcomes (`referral.groupbuy.*`) arrive with the
 * group-buy saga. It publishes through the outbox only — `orders.order.placed` on the Order
 * insert, and paid / cancelled / shipped (one per parcel) / delivered / completed / refunded
 * (one per after-sale refund) on the entries of the order's ledger — and asks catalog over request/reply for prices and stock
 * (`catalog.price.quote`, `catalog.stock.reserve|release`, see catalog.ts).
 */
export async function registerConsumers(_deps: { bus: Bus }): Promise<void> {}
