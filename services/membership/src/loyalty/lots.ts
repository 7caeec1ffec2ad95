// Pure arithmetic of a lot ledger (points, and growth value, which works the same way): no I/O,
// unit-tested on its own.
//
// Every positive amount enters as a lot with an expiry; the head entry of an account carries all
// of its lots, so the head IS the account. Spends take the lots that expire first (FIFO), claw
// backs take the newest, and an expired lot no longer counts even before the sweeper has written
// its EXPIRE entry. Lots with the same expiry are kept as one, so an account holds at most one
// lot per expiry instant (expiries are rounded up to a whole day).

export interface Lot {
  expiresAt: Date;
  n: number;
}

const DAY_MS = 86_400_000;

/** The expiry of an amount received at `at` that lives `days` days: rounded up to 00:00 UTC. */
export function expiryOf(at: Date, days: number): Date {
  return new Date(Math.ceil((at.getTime() + days * DAY_MS) / DAY_MS) * DAY_MS);
}

export const total = (lots: readonly Lot[]) => lots.reduce((s, l) => s + l.n, 0);

/** What can be spent at `at`: lots not yet expired. */
export const available = (lots: readonly Lot[], at: Date) => total(lots.filter((l) => l.expiresAt.getTime() > at.getTime()));

function normalise(lots: Lot[]): Lot[] {
  const merged = new Map<number, number>();
  for (const l of lots) if (l.n > 0) merged.set(l.expiresAt.getTime(), (merged.get(l.expiresAt.getTime()) ?? 0) + l.n);
  return [...merged].sort((a, b) => a[0] - b[0]).map(([t, n]) => ({ expiresAt: new Date(t), n }));
}

export function addLots(lots: readonly Lot[], added: readonly Lot[]): Lot[] {
  for (const l of added) if (!Number.isSafeInteger(l.n) || l.n < 0) throw new Error(`invalid lot of ${l.n}`);
  return normalise([...lots.map((l) => ({ ...l })), ...added.map((l) => ({ ...l }))]);
}

/**
 * Takes `n` from the unexpired lots that expire first; null when there is not enough. Returns
 * what was taken per expiry, so that giving it back restores the same lots.
 */
export function takeFifo(lots: readonly Lot[], n: number, at: Date): { lots: Lot[]; taken: Lot[] } | null {
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`invalid spend of ${n}`);
  if (available(lots, at) < n) return null;
  let left = n;
  const taken: Lot[] = [];
  const rest = lots.map((l) => ({ ...l }));
  for (const l of rest) {
    if (left === 0) break;
    if (l.expiresAt.getTime() <= at.getTime()) continue;
    const t = Math.min(l.n, left);
    l.n -= t;
    left -= t;
    taken.push({ expiresAt: l.expiresAt, n: t });
  }
  return { lots: normalise(rest), taken };
}

/**
 * Takes up to `n` from the newest unexpired lots (a claw-back of what an order earned, which is the
 * newest value the member has). Never below zero: what could not be taken is `shortfall`.
 */
export function takeNewest(lots: readonly Lot[], n: number, at: Date): { lots: Lot[]; taken: Lot[]; shortfall: number } {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`invalid claw-back of ${n}`);
  let left = n;
  const taken: Lot[] = [];
  const rest = lots.map((l) => ({ ...l }));
  for (let i = rest.length - 1; i >= 0 && left > 0; i--) {
    const l = rest[i]!;
    if (l.expiresAt.getTime() <= at.getTime()) continue;
    const t = Math.min(l.n, left);
    l.n -= t;
    left -= t;
    taken.push({ expiresAt: l.expiresAt, n: t });
  }
  return { lots: normalise(rest), taken, shortfall: left };
}

/** Drops lots expired at `at`; `expired` is how much that removes. */
export function dropExpired(lots: readonly Lot[], at: Date): { lots: Lot[]; expired: number } {
  const keep = lots.filter((l) => l.expiresAt.getTime() > at.getTime());
  return { lots: normalise(keep.map((l) => ({ ...l }))), expired: total(lots) - total(keep) };
}

/** The part of `taken` (FIFO-ordered) worth `n`, taken from its latest-expiring end. */
export function portionOf(taken: readonly Lot[], n: number): Lot[] {
  let left = n;
  const out: Lot[] = [];
  for (let i = taken.length - 1; i >= 0 && left > 0; i--) {
    const lot = taken[i]!;
    const t = Math.min(lot.n, left);
    out.push({ expiresAt: lot.expiresAt, n: t });
    left -= t;
  }
  if (left > 0) throw new Error(`portion of ${n} exceeds what was taken`);
  return out;
}

/** Cumulative pro-rata share: what `part/whole` of `amount` is, rounded down (exact over several refunds). */
export function proRata(amount: number, part: number, whole: number): number {
  if (whole <= 0) return 0;
  return Math.floor((amount * Math.min(part, whole)) / whole);
}
