import { Schema, type Connection } from 'mongoose';

/**
 * What referral decided about a group-buy order's group (`group_buy_holds/<orderId>`): the first
 * insert wins, so a redelivered or late event cannot move an order the other way. An order with a
 * GROUP_BUY adjustment and no claim is still GROUPING: paid, but not to be shipped.
 */
export interface GroupBuyHoldDoc {
  _id: string;
  outcome: 'SUCCEEDED' | 'FAILED';
  groupId: string;
  offerId: string;
  /** The referral event that decided it. */
  eventId: string;
  at: Date;
}

export function createGroupBuyHoldModels(db: Connection) {
  const hold = new Schema<GroupBuyHoldDoc>(
    {
      _id: String,
      outcome: { type: String, required: true },
      groupId: { type: String, required: true },
      offerId: { type: String, required: true },
      eventId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  return { GroupBuyHold: db.model<GroupBuyHoldDoc>('GroupBuyHold', hold, 'group_buy_holds') };
}
export type GroupBuyHoldModels = ReturnType<typeof createGroupBuyHoldModels>;
