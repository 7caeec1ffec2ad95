import { createHash } from 'node:crypto';
import { AppError, BusRequestError, ErrorCode, isStaff, type Viewer } from '@flywheel/service-kit';

export const CURRENCY = 'CNY';
export interface Money {
  /** Integer fen. */
  amount: number;
  currency: typeof CURRENCY;
}
export const money = (amount: number): Money => ({ amount, currency: CURRENCY });

/** Lines per order and per cart; units of one SKU per order and per cart line. */
export const MAX_LINES = 50;
export const MAX_QUANTITY = 99;

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Another service's refusal keeps its code; no answer at all is UNAVAILABLE (set by the bus). */
export function fromBus(err: unknown): never {
  if (err instanceof BusRequestError) {
    const code = (Object.values(ErrorCode) as string[]).includes(err.code) ? (err.code as ErrorCode) : ErrorCode.INTERNAL_SERVER_ERROR;
    throw new AppError(code, err.message);
  }
  throw err;
}

/** A member's own orders and cart are theirs and staff's to see; nobody else's. */
export function canSee(viewer: Viewer | null, memberId: string): boolean {
  return isStaff(viewer) || isMember(viewer, memberId);
}
export const isMember = (viewer: Viewer | null, memberId: string) => Boolean(viewer?.roles.includes('CUSTOMER') && viewer.id === memberId);

/** The code of a refusal the client saw (AppError), or null for anything else. */
export const codeOf = (err: unknown): string | null => (err instanceof AppError ? String(err.extensions.code) : null);
