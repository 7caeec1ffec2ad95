import { Schema, Types, type Connection } from 'mongoose';

export interface FlashSaleDoc {
  _id: Types.ObjectId;
  /** Unique: the creating staff member's idempotency key (hashed), or a random value. */
  key: string;
  skuId: Types.ObjectId;
  productId: Types.ObjectId;
  /** Integer fen. */
  flashPrice: number;
  quota: number;
  perMemberLimit: number;
  startsAt: Date;
  endsAt: Date;
  /**
   * A group-exclusive flash sale (社群专属秒杀): only current members of this community group see
   * it as a customer and get its price. Null (or absent on sales from before groups): anyone.
   */
  groupId?: string | null;
  createdBy: string;
  createdAt: Date;
}

/** One unit of a member's per-flash-sale limit: `<flashSaleId>:<memberId>:<n>`, n = 1..limit. */
export interface FlashSlotDoc {
  _id: string;
  flashSaleId: string;
  memberId: string;
  n: number;
  orderId: string;
  at: Date;
}

/**
 * A flash sale whose unsold quota must go back to its SKU at `dueAt` (its end). Written before
 * the quota is carved out, deleted once nothing is left to return, so a crash in between leaves
 * it for the sweeper.
 */
export interface FlashSettlementDoc {
  _id: string;
  dueAt: Date;
}

export function createFlashSaleModels(db: Connection) {
  const flashSchema = new Schema<FlashSaleDoc>(
    {
      key: { type: String, required: true, unique: true },
      skuId: { type: Schema.Types.ObjectId, required: true },
      productId: { type: Schema.Types.ObjectId, required: true },
      flashPrice: { type: Number, required: true },
      quota: { type: Number, required: true },
      perMemberLimit: { type: Number, required: true },
      startsAt: { type: Date, required: true },
      endsAt: { type: Date, required: true },
      groupId: { type: String, default: null },
      createdBy: String,
      createdAt: Date,
    },
    { versionKey: false },
  );
  flashSchema.index({ skuId: 1, endsAt: 1 });
  flashSchema.index({ endsAt: 1, _id: -1 });
  flashSchema.index({ startsAt: 1, _id: -1 });
  flashSchema.index({ groupId: 1, _id: -1 });

  const slotSchema = new Schema<FlashSlotDoc>(
    { _id: String, flashSaleId: String, memberId: String, n: Number, orderId: String, at: Date },
    { versionKey: false },
  );
  slotSchema.index({ flashSaleId: 1, memberId: 1 });
  slotSchema.index({ orderId: 1 });

  const settlementSchema = new Schema<FlashSettlementDoc>({ _id: String, dueAt: Date }, { versionKey: false });
  settlementSchema.index({ dueAt: 1 });
  return {
    FlashSale: db.model<FlashSaleDoc>('FlashSale', flashSchema, 'flash_sales'),
    FlashSlot: db.model<FlashSlotDoc>('FlashSlot', slotSchema, 'flash_slots'),
    FlashSettlement: db.model<FlashSettlementDoc>('FlashSettlement', settlementSchema, 'flash_settlements'),
  };
}
