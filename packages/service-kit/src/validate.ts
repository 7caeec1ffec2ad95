import { createHash } from 'node:crypto';
import { badInput } from './errors';

// The input rules every service applies the same way. A service keeps only the rules that are its
// own (a price ladder, a phone number); anything two services check lives here.

/** A MongoDB ObjectId as clients send it: 24 hex digits. */
export const OBJECT_ID = /^[0-9a-f]{24}$/i;
export const isObjectId = (id: unknown): id is string => typeof id === 'string' && OBJECT_ID.test(id);

/** An id that must be an ObjectId, or BAD_USER_INPUT naming the field. */
export function requireObjectId(raw: string | null | undefined, field: string): string {
  const id = (raw ?? '').trim();
  if (!isObjectId(id)) throw badInput(`${field} must be an id`, field);
  return id;
}

/** Code points, not UTF-16 units: a Chinese name's length is what an operator counts. */
export const charCount = (s: string) => [...s].length;

export interface TextRule {
  /** Fewest characters (default 1). */
  min?: number;
  /** Empty (after trimming) is allowed and returns ''. */
  optional?: boolean;
}

/** Trimmed text of `min`..`max` characters, or BAD_USER_INPUT naming the field. */
export function text(raw: string | null | undefined, field: string, max: number, rule: TextRule = {}): string {
  const value = (raw ?? '').trim();
  if (!value && rule.optional) return '';
  const min = rule.min ?? 1;
  const n = charCount(value);
  if (n < min || n > max) throw badInput(`${field} must be ${min} to ${max} characters`, field);
  return value;
}

/** Text that may be absent: null for null, undefined or blank; otherwise as `text`. */
export function optionalText(raw: string | null | undefined, field: string, max: number): string | null {
  const value = text(raw, field, max, { optional: true });
  return value || null;
}

/** An absolute http(s) URL of at most `max` characters (media live on a CDN; services store addresses). */
export function httpUrl(raw: string | null | undefined, field: string, max: number): string {
  const value = text(raw, field, max);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw badInput('Not an absolute URL', field);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw badInput('Only http(s) URLs', field);
  return value;
}

/** A whole number in `min`..`max`, or BAD_USER_INPUT naming the field. */
export function wholeNumber(value: number | null | undefined, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw badInput(`${field} must be a whole number from ${min} to ${max}`, field);
  }
  return value;
}

/** Hex SHA-256 of a string: the ids derived from idempotency keys and request fingerprints. */
export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
