// Referral's fraud checks, shared by its modules (invite rewards here; bargain helpers, distribution):
// pure verdicts, and the claim-counting helpers they stand on. A count that decides is taken from
// rows (unique inserts), never from a `$inc` counter (docs/concurrency.md).
import { isIP } from 'node:net';
import type { Model } from 'mongoose';
import { isDuplicateKey } from '@flywheel/service-kit';

/** The rules a referral reward or action can be held or refused under. */
export type FraudRule = 'SELF_INVITE' | 'CYCLE' | 'VELOCITY' | 'SAME_PHONE';

/** Why a reward is held or an action refused: the rule and a sentence staff and clients can show. */
export interface FraudVerdict {
  rule: FraudRule;
  reason: string;
}

export const HOUR_MS = 3_600_000;

/** SELF_INVITE: a member's own code, or their own link, never counts for them. */
export function selfInvite(actorId: string, ownerId: string): FraudVerdict | null {
  return actorId === ownerId ? { rule: 'SELF_INVITE', reason: 'A member cannot invite, help or buy through themselves' } : null;
}

/** VELOCITY: more than `max` events (registrations, helps) by one key within the window. */
export function velocity(count: number, max: number, what = 'registrations with this code within an hour'): FraudVerdict | null {
  return count > max ? { rule: 'VELOCITY', reason: `${count} ${what} (more than ${max})` } : null;
}

/** SAME_PHONE: the member's phone hash is on another account (`others` of them). */
export function samePhone(others: number): FraudVerdict | null {
  return others > 0 ? { rule: 'SAME_PHONE', reason: `The same phone is on ${others} other account${others > 1 ? 's' : ''}` } : null;
}

/**
 * CYCLE: walking up from `inviterId` through each member's inviter reaches `inviteeId` (A invites
 * B invites A, or a longer ring). Returns the verdict naming the ring, or null. `inviterOf` looks a
 * member's inviter up; the walk stops after `maxDepth` steps or at a member seen before.
 */
export async function inviteCycle(
  inviteeId: string,
  inviterId: string,
  inviterOf: (memberId: string) => Promise<string | null>,
  maxDepth = 10,
): Promise<FraudVerdict | null> {
  const ring = [inviteeId, inviterId];
  const seen = new Set(ring);
  let current = inviterId;
  for (let depth = 0; depth < maxDepth; depth++) {
    const next = await inviterOf(current);
    if (!next) return null;
    if (next === inviteeId) {
      return { rule: 'CYCLE', reason: `Invitations go round in a ring: ${[...ring, inviteeId].join(' → ')}` };
    }
    if (seen.has(next)) return null;
    seen.add(next);
    ring.push(next);
    current = next;
  }
  return null;
}

/**
 * The network an address belongs to, for "helpers from one IP range" (an IPv4 /24, an IPv6 /48 by
 * default); null for something that is not an address. Pure: callers count claims per range.
 */
export function ipRange(ip: string, v4Bits = 24, v6Bits = 48): string | null {
  const addr = ip.trim().replace(/^::ffff:(?=\d+\.)/i, '');
  if (isIP(addr) === 4) {
    const n = addr.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
    const masked = v4Bits === 0 ? 0 : Math.floor(n / 2 ** (32 - v4Bits)) * 2 ** (32 - v4Bits);
    return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.')}/${v4Bits}`;
  }
  if (isIP(addr) === 6) {
    const [head, tail = ''] = addr.toLowerCase().split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    const bits = groups.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
    const kept = bits.slice(0, v6Bits).padEnd(128, '0');
    const out = Array.from({ length: 8 }, (_, i) => parseInt(kept.slice(i * 16, i * 16 + 16), 2).toString(16));
    return `${out.join(':')}/${v6Bits}`;
  }
  return null;
}

/** How many rows match `filter` with `field` in (from, to]: a count taken from claims. */
export function countInWindow<T>(
  model: Model<T>,
  filter: Record<string, unknown>,
  field: string,
  to: Date,
  windowMs = HOUR_MS,
): Promise<number> {
  return model.countDocuments({ ...filter, [field]: { $gt: new Date(to.getTime() - windowMs), $lte: to } } as never).exec();
}

/**
 * Takes one of `cap` numbered slots `<prefix>:<n>` by a unique insert (the first free n after the
 * `taken` count), so concurrent takers can never exceed the cap. Returns the slot id, or null when
 * all are taken. `body` is the rest of the slot's row.
 */
export async function takeSlot<T>(
  model: Model<T>,
  prefix: string,
  cap: number,
  body: Record<string, unknown>,
  taken: Record<string, unknown>,
): Promise<string | null> {
  const count = await model.countDocuments(taken as never);
  for (let n = count + 1; n <= cap; n++) {
    const _id = `${prefix}:${n}`;
    try {
      await model.create({ ...body, _id } as never);
      return _id;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }
  return null;
}
