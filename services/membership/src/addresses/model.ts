import { Schema, Types, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

/**
 * One address of a member's book (地址). The recipient's name, phone and detail line are personal
 * data: stored only as AES-256-GCM ciphertext under PII_ENCRYPTION_KEY, like the member's phone.
 * Region codes and names (province / city / district) are kept in clear: shipping fees and
 * delivery areas are decided on them, and without the three fields above they name no one.
 */
export interface AddressDoc {
  _id: Types.ObjectId;
  memberId: string;
  /**
   * 1..MAX_ADDRESSES, unique per member: taking a free slot is the claim that keeps the book
   * bounded under concurrent adds (docs/concurrency.md); removing the address frees it.
   */
  slot: number;
  recipientNameEnc: string;
  phoneEnc: string;
  detailEnc: string;
  provinceCode: string;
  provinceName: string;
  cityCode: string;
  cityName: string;
  districtCode: string;
  districtName: string;
  label: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * The member's default address as an append-only pointer ledger (`accountId` = member id): the
 * head names the default, so there is exactly one whatever the races (setting a default is an
 * append, never a flag flipped on two documents). Entries hold ids only, no personal data.
 */
export interface DefaultAddressEntry extends LedgerEntry {
  addressId: string;
  at: Date;
}

export function createAddressModels(db: Connection) {
  const addressSchema = new Schema<AddressDoc>(
    {
      memberId: { type: String, required: true },
      slot: { type: Number, required: true },
      recipientNameEnc: { type: String, required: true },
      phoneEnc: { type: String, required: true },
      detailEnc: { type: String, required: true },
      provinceCode: { type: String, required: true },
      provinceName: { type: String, required: true },
      cityCode: { type: String, required: true },
      cityName: { type: String, required: true },
      districtCode: { type: String, required: true },
      districtName: { type: String, required: true },
      label: { type: String, default: null },
      createdAt: { type: Date, required: true },
      updatedAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  addressSchema.index({ memberId: 1, slot: 1 }, { unique: true });

  const defaultSchema = new Schema<DefaultAddressEntry>(
    { _id: String, accountId: String, seq: Number, addressId: String, at: Date },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) defaultSchema.index(idx);

  return {
    Address: db.model<AddressDoc>('Address', addressSchema, 'addresses'),
    DefaultAddress: db.model<DefaultAddressEntry>('DefaultAddress', defaultSchema, 'default_addresses'),
  };
}
export type AddressModels = ReturnType<typeof createAddressModels>;
