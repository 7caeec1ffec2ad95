import { Types } from 'mongoose';
import type { ReplyData } from '@flywheel/events';
import {
  appendToLedger,
  badInput,
  claimOnce,
  decryptPii,
  encryptPii,
  isObjectId,
  isSelfOrStaff,
  ledgerHead,
  notFound,
  optionalText,
  requireRole,
  text,
  AppError,
  type PiiKeys,
  type Viewer,
} from '@flywheel/service-kit';
import { normalizePhone } from '../service';
import type { AddressDoc, AddressModels } from './model';

/** A member's book holds at most this many addresses (a shop's usual limit). */
export const MAX_ADDRESSES = 20;

export interface RegionInput {
  code: string;
  name: string;
}

export interface AddAddressInput {
  recipientName: string;
  phone: string;
  province: RegionInput;
  city: RegionInput;
  district: RegionInput;
  detail: string;
  label?: string | null;
  /** Make it the default (the first address always is). */
  isDefault?: boolean | null;
}

export type UpdateAddressInput = { addressId: string } & Partial<{
  [K in Exclude<keyof AddAddressInput, 'isDefault'>]: AddAddressInput[K] | null;
}>;

/** An address as its member and staff see it (decrypted). */
export interface AddressView {
  id: string;
  memberId: string;
  recipientName: string;
  phone: string;
  province: RegionInput;
  city: RegionInput;
  district: RegionInput;
  detail: string;
  label: string | null;
  isDefault: boolean;
  createdAt: Date;
}

export type AddressSnapshot = NonNullable<ReplyData<'membership.address.snapshot'>['address']>;

export interface AddressDeps {
  models: AddressModels;
  pii: Pick<PiiKeys, 'encryptionKey'>;
  now: () => Date;
}

const CODE = /^\d{6}$/;

/**
 * Province, city and district as GB/T 2260 codes (six digits) with the names the client shows.
 * The three must nest: a province code ends in 0000, a city shares the province's first two
 * digits, a district the city's first four (a city without districts, such as 东莞 441900, sends
 * its own code as the district).
 */
function parseRegions(input: Pick<AddAddressInput, 'province' | 'city' | 'district'>) {
  const region = (r: RegionInput | null | undefined, field: string) => {
    const code = (r?.code ?? '').trim();
    if (!CODE.test(code)) throw badInput(`${field}.code must be a 6-digit administrative code`, `${field}.code`);
    return { code, name: text(r?.name, `${field}.name`, 20) };
  };
  const province = region(input.province, 'province');
  const city = region(input.city, 'city');
  const district = region(input.district, 'district');
  if (!province.code.endsWith('0000')) throw badInput('province.code must be a province (ending in 0000)', 'province.code');
  if (city.code.slice(0, 2) !== province.code.slice(0, 2)) throw badInput('city.code is not in the province', 'city.code');
  if (district.code.slice(0, 4) !== city.code.slice(0, 4)) throw badInput('district.code is not in the city', 'district.code');
  return { province, city, district };
}

function parsePhone(raw: string | null | undefined): string {
  if ((raw ?? '').length > 20) throw badInput('phone must be at most 20 characters', 'phone');
  const phone = normalizePhone(raw ?? '');
  if (!phone) throw badInput('Enter a valid mainland mobile number (11 digits starting with 1)', 'phone');
  return phone;
}

/**
 * Shipping addresses (地址管理). Every change is the member's own: an address of another member
 * is NOT_FOUND, never FORBIDDEN, so ids say nothing about whether they exist. The book is bounded
 * by slot claims; the default is the head of a pointer ledger (model.ts). Erasure deletes the
 * member's addresses (the pointer ledger keeps ids only).
 */
export function createAddressService(deps: AddressDeps) {
  const { models, pii, now } = deps;
  const { Address, DefaultAddress } = models;

  const view = (doc: AddressDoc, defaultId: string | null): AddressView => ({
    id: doc._id.toHexString(),
    memberId: doc.memberId,
    recipientName: decryptPii(pii, doc.recipientNameEnc),
    phone: decryptPii(pii, doc.phoneEnc),
    province: { code: doc.provinceCode, name: doc.provinceName },
    city: { code: doc.cityCode, name: doc.cityName },
    district: { code: doc.districtCode, name: doc.districtName },
    detail: decryptPii(pii, doc.detailEnc),
    label: doc.label ?? null,
    isDefault: doc._id.toHexString() === defaultId,
    createdAt: doc.createdAt,
  });

  const bookOf = (memberId: string) => Address.find({ memberId }).sort({ createdAt: 1, _id: 1 }).lean<AddressDoc[]>();

  /** The default among `book`: the ledger's head if it still exists, else the oldest address. */
  async function defaultIn(memberId: string, book: AddressDoc[]): Promise<string | null> {
    if (!book.length) return null;
    const head = await ledgerHead(DefaultAddress, memberId);
    if (head && book.some((a) => a._id.toHexString() === head.addressId)) return head.addressId;
    return book[0]!._id.toHexString();
  }

  /** Points the default at `addressId` (an append: the head is the one default). */
  async function pointDefault(memberId: string, addressId: string): Promise<void> {
    await appendToLedger(DefaultAddress, memberId, (head) => (head?.addressId === addressId ? null : { addressId, at: now() }));
  }

  /** The member's own address, or NOT_FOUND (also for another member's and for a malformed id). */
  async function own(memberId: string, addressId: string): Promise<AddressDoc> {
    const doc = isObjectId(addressId) ? await Address.findById(addressId).lean<AddressDoc>() : null;
    if (!doc || doc.memberId !== memberId) throw notFound('Address');
    return doc;
  }

  async function viewOf(memberId: string, addressId: string): Promise<AddressView> {
    const book = await bookOf(memberId);
    const doc = book.find((a) => a._id.toHexString() === addressId);
    if (!doc) throw notFound('Address');
    return view(doc, await defaultIn(memberId, book));
  }

  return {
    /** The book, default first then oldest first; for the member and staff only (null otherwise). */
    async addressesOf(viewer: Viewer | null, memberId: string): Promise<AddressView[] | null> {
      if (!isSelfOrStaff(viewer, memberId)) return null;
      const book = await bookOf(memberId);
      const def = await defaultIn(memberId, book);
      const views = book.map((a) => view(a, def));
      return [...views.filter((v) => v.isDefault), ...views.filter((v) => !v.isDefault)];
    },

    async defaultAddressOf(viewer: Viewer | null, memberId: string): Promise<AddressView | null> {
      if (!isSelfOrStaff(viewer, memberId)) return null;
      const book = await bookOf(memberId);
      const def = await defaultIn(memberId, book);
      const doc = book.find((a) => a._id.toHexString() === def);
      return doc ? view(doc, def) : null;
    },

    /** Takes the first free slot of the book by unique insert: CONFLICT when all MAX_ADDRESSES are taken. */
    async add(viewer: Viewer | null, input: AddAddressInput): Promise<AddressView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const recipientName = text(input.recipientName, 'recipientName', 50);
      const phone = parsePhone(input.phone);
      const { province, city, district } = parseRegions(input);
      const detail = text(input.detail, 'detail', 120, { min: 2 });
      const label = optionalText(input.label, 'label', 10);
      const at = now();
      const taken = new Set((await Address.find({ memberId }, { slot: 1 }).lean<AddressDoc[]>()).map((a) => a.slot));
      const _id = new Types.ObjectId();
      let placed = false;
      for (let slot = 1; slot <= MAX_ADDRESSES && !placed; slot++) {
        if (taken.has(slot)) continue;
        const doc: AddressDoc = {
          _id,
          memberId,
          slot,
          recipientNameEnc: encryptPii(pii, recipientName),
          phoneEnc: encryptPii(pii, phone),
          detailEnc: encryptPii(pii, detail),
          provinceCode: province.code,
          provinceName: province.name,
          cityCode: city.code,
          cityName: city.name,
          districtCode: district.code,
          districtName: district.name,
          label,
          createdAt: at,
          updatedAt: at,
        };
        // The unique (memberId, slot) is the claim: a concurrent add that took this slot makes us try the next.
        placed = await claimOnce(Address, { ...doc });
      }
      if (!placed) throw new AppError('CONFLICT', `An address book holds at most ${MAX_ADDRESSES} addresses; remove one first`);
      const id = _id.toHexString();
      const book = await bookOf(memberId);
      const head = await ledgerHead(DefaultAddress, memberId);
      const hasDefault = Boolean(head && book.some((a) => a._id.toHexString() === head.addressId));
      if (input.isDefault || !hasDefault) await pointDefault(memberId, id);
      return viewOf(memberId, id);
    },

    /** Fields left out (or null) keep their value; the regions are replaced together. */
    async update(viewer: Viewer | null, input: UpdateAddressInput): Promise<AddressView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const doc = await own(memberId, input.addressId);
      const set: Partial<AddressDoc> = { updatedAt: now() };
      if (input.recipientName != null) set.recipientNameEnc = encryptPii(pii, text(input.recipientName, 'recipientName', 50));
      if (input.phone != null) set.phoneEnc = encryptPii(pii, parsePhone(input.phone));
      if (input.detail != null) set.detailEnc = encryptPii(pii, text(input.detail, 'detail', 120, { min: 2 }));
      if (input.label !== undefined) set.label = optionalText(input.label, 'label', 10);
      if (input.province != null || input.city != null || input.district != null) {
        if (input.province == null || input.city == null || input.district == null) {
          throw badInput('province, city and district change together', 'province');
        }
        const r = parseRegions({ province: input.province, city: input.city, district: input.district });
        Object.assign(set, {
          provinceCode: r.province.code,
          provinceName: r.province.name,
          cityCode: r.city.code,
          cityName: r.city.name,
          districtCode: r.district.code,
          districtName: r.district.name,
        });
      }
      // The member's own document, written by the member only: last writer wins, nothing is decided by it.
      await Address.updateOne({ _id: doc._id, memberId }, { $set: set });
      return viewOf(memberId, input.addressId);
    },

    /** Removing the default makes the oldest remaining address the default. */
    async remove(viewer: Viewer | null, addressId: string): Promise<{ removedAddressId: string; defaultAddress: AddressView | null }> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const doc = await own(memberId, addressId);
      await Address.deleteOne({ _id: doc._id, memberId });
      const book = await bookOf(memberId);
      const def = await defaultIn(memberId, book);
      if (def) await pointDefault(memberId, def);
      const next = book.find((a) => a._id.toHexString() === def);
      return { removedAddressId: addressId, defaultAddress: next ? view(next, def) : null };
    },

    async setDefault(viewer: Viewer | null, addressId: string): Promise<AddressView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      await own(memberId, addressId);
      await pointDefault(memberId, addressId);
      return viewOf(memberId, addressId);
    },

    /** `membership.address.snapshot`: the member's own address (or default), decrypted for the order to keep. */
    async snapshot(memberId: string, addressId?: string): Promise<ReplyData<'membership.address.snapshot'>> {
      const book = await bookOf(memberId);
      const id = addressId ?? (await defaultIn(memberId, book));
      if (!id) return { address: null };
      const doc = book.find((a) => a._id.toHexString() === id);
      if (!doc) throw notFound('Address');
      return {
        address: {
          addressId: id,
          recipientName: decryptPii(pii, doc.recipientNameEnc),
          phone: decryptPii(pii, doc.phoneEnc),
          provinceCode: doc.provinceCode,
          provinceName: doc.provinceName,
          cityCode: doc.cityCode,
          cityName: doc.cityName,
          districtCode: doc.districtCode,
          districtName: doc.districtName,
          detail: decryptPii(pii, doc.detailEnc),
          ...(doc.label ? { label: doc.label } : {}),
        },
      };
    },

    /**
     * `membership.member.erased`: every address of the member goes. Idempotent (a repeat deletes
     * nothing). The default-pointer ledger stays: it holds address ids only, and its entries are
     * never rewritten (a head read must find every seq).
     */
    async erase(memberId: string): Promise<number> {
      const { deletedCount } = await Address.deleteMany({ memberId });
      return deletedCount ?? 0;
    },
  };
}
export type AddressService = ReturnType<typeof createAddressService>;
