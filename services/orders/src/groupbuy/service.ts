import { AppError, claimOnce, type Logger } from '@flywheel/service-kit';
import type { AfterSales } from '../aftersales/service';
import type { Models, OrderDoc } from '../order/model';
import type { GroupBuyHoldDoc, GroupBuyHoldModels } from './model';

export type GroupBuyState = 'GROUPING' | 'SUCCEEDED' | 'FAILED';

/** The group an order joined, from its GROUP_BUY adjustment (`ref` = `groupbuy:<groupId>`); null for any other order. */
export const groupIdOf = (order: Pick<OrderDoc, 'adjustments'>): string | null => {
  const ref = order.adjustments?.find((a) => a.kind === 'GROUP_BUY')?.ref;
  return ref?.startsWith('groupbuy:') ? ref.slice('groupbuy:'.length) : null;
};

export interface GroupBuyOutcome {
  groupId: string;
  offerId: string;
  orderIds: string[];
}

export interface GroupBuyHoldsDeps {
  models: Pick<Models, 'Order'> & GroupBuyHoldModels;
  afterSales: Pick<AfterSales, 'refundWhole'>;
  now: () => Date;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Group-buy orders (拼团) wait, paid, in their group: fulfilment refuses to ship them and the staff
 * list of PAID orders leaves them out (`grouping`, a projection) until referral's outcome arrives.
 * `referral.groupbuy.succeeded` releases each order named; `referral.groupbuy.failed` refunds each
 * one in full through the after-sales machinery (the provider refunds once per refund id; stock,
 * points and coupons come back through `orders.order.refunded` as for any refund). The hold claim
 * decides; a redelivery runs the same idempotent steps again.
 */
export function createGroupBuyHolds(deps: GroupBuyHoldsDeps) {
  const { GroupBuyHold, Order } = deps.models;

  async function stateOf(order: OrderDoc): Promise<{ groupId: string; state: GroupBuyState } | null> {
    const groupId = groupIdOf(order);
    if (!groupId) return null;
    const hold = await GroupBuyHold.findById(order._id).lean<GroupBuyHoldDoc>();
    return { groupId, state: hold?.outcome ?? 'GROUPING' };
  }

  /** The claim for this order: ours, or the one that landed first. */
  async function decide(orderId: string, outcome: GroupBuyHoldDoc['outcome'], data: GroupBuyOutcome, eventId: string) {
    await claimOnce(GroupBuyHold, { _id: orderId, outcome, groupId: data.groupId, offerId: data.offerId, eventId, at: deps.now() });
    const hold = await GroupBuyHold.findById(orderId).lean<GroupBuyHoldDoc>();
    await Order.updateOne({ _id: orderId }, { $set: { grouping: false } });
    return hold?.outcome ?? outcome;
  }

  return {
    stateOf,

    /** Fulfilment's check before a parcel: a group-buy order ships only once its group succeeded. */
    async requireReleased(order: OrderDoc): Promise<void> {
      const s = await stateOf(order);
      if (!s || s.state === 'SUCCEEDED') return;
      throw new AppError(
        'CONFLICT',
        s.state === 'GROUPING' ? 'This group-buy order waits for its group to fill' : 'This group buy failed; the order is refunded',
        { reason: s.state === 'GROUPING' ? 'GROUPING' : 'GROUP_FAILED' },
      );
    },

    async succeeded(data: GroupBuyOutcome, eventId: string): Promise<void> {
      for (const orderId of data.orderIds) {
        const outcome = await decide(orderId, 'SUCCEEDED', data, eventId);
        if (outcome !== 'SUCCEEDED') deps.logger?.warn({ orderId, groupId: data.groupId }, 'group-buy success after a failure ignored');
      }
    },

    async failed(data: GroupBuyOutcome, eventId: string): Promise<void> {
      for (const orderId of data.orderIds) {
        const order = await Order.findById(orderId).lean<OrderDoc>();
        if (!order) continue;
        if ((await decide(orderId, 'FAILED', data, eventId)) !== 'FAILED') {
          deps.logger?.warn({ orderId, groupId: data.groupId }, 'group-buy failure after a success ignored');
          continue;
        }
        await deps.afterSales.refundWhole(order, `groupbuy:${data.groupId}`, 'Group buy failed (拼团失败)');
      }
    },
  };
}
export type GroupBuyHolds = ReturnType<typeof createGroupBuyHolds>;
