import { randomUUID } from 'node:crypto';
import type { NatsConnection } from 'nats';
import Redis from 'ioredis';
import { z } from 'zod';

// The flash-sale gate (秒杀: "cache the hot item, queue the orders"). In a rush every buyer is
// decided here, in memory or in one Redis script, before anything is written: a buyer the gate
// admits holds units of the quota for their order (a numbered ticket); a buyer it refuses is
// quoted without the flash price and never reaches the database. The flash sale's ledger
// account stays the authority (docs/concurrency.md, "Hot items"): the gate only keeps the crowd away from it, so a gate
// that is wrong, wiped or restarted can cost a sale, never oversell.
//
// A hold is taken at quote time for a checkout (orderId), confirmed once the reservation is in
// the ledger, and given back when the reservation is released; a hold never confirmed (the
// checkout stopped before reserving) expires after `holdMs`. Whenever the gate finds the quota
// used up it re-reads the ledger (at most every RESYNC_MS): left = ledger available − units held
// but not yet reserved. That is also how it starts, after a restart or a wipe.

/** How often a gate that found the quota used up may re-read the ledger. */
export const RESYNC_MS = 1_000;

export interface GateSale {
  id: string;
  perMemberLimit: number;
  endsAt: Date;
}

export type Admission = { ok: true; ticket: number; left: number } | { ok: false; reason: 'SOLD_OUT' | 'LIMIT' };

export interface FlashGate {
  readonly kind: 'memory' | 'redis';
  /**
   * Holds `quantity` units of the sale for the order, within the member's limit. The same order
   * asking again gets its hold back. `ledgerAvailable` reads the quota's ledger head (rebuilds).
   */
  admit(sale: GateSale, orderId: string, memberId: string, quantity: number, ledgerAvailable: () => Promise<number>): Promise<Admission>;
  /** The order's units are in the ledger: its hold no longer expires. */
  confirm(flashSaleId: string, orderId: string): Promise<void>;
  /**
   * The order holds nothing any more. `giveBack` false when the ledger refused it (the gate had
   * counted units the ledger does not have): the units are not returned and the next buyer it
   * cannot serve makes it re-read the ledger.
   */
  release(flashSaleId: string, orderId: string, giveBack: boolean): Promise<void>;
  close(): Promise<void>;
}

interface Hold {
  memberId: string;
  quantity: number;
  ticket: number;
  /** Null once confirmed. */
  expiresAt: number | null;
}

interface SaleState {
  left: number;
  issued: number;
  holds: Map<string, Hold>;
  members: Map<string, number>;
  /** Unconfirmed holds in the order they expire (one fixed hold time, so insertion order). */
  expiries: { orderId: string; at: number }[];
  syncedAt: number;
  stale: boolean;
  endsAt: number;
  /** Holds confirmed so far: a ledger read that raced a confirmation may predate it, and is not used. */
  confirms: number;
}

/** One replica's gate: exact for one replica; with several, each admits up to the ledger's count. */
export function createMemoryFlashGate(opts: { holdMs: number; now?: () => number }): FlashGate {
  const now = opts.now ?? Date.now;
  const sales = new Map<string, SaleState>();
  const syncing = new Map<string, Promise<SaleState>>();

  const unconfirmed = (s: SaleState) => [...s.holds.values()].reduce((n, h) => n + (h.expiresAt === null ? 0 : h.quantity), 0);

  function drop(s: SaleState, orderId: string, giveBack: boolean) {
    const hold = s.holds.get(orderId);
    if (!hold) return;
    s.holds.delete(orderId);
    const used = (s.members.get(hold.memberId) ?? 0) - hold.quantity;
    if (used > 0) s.members.set(hold.memberId, used);
    else s.members.delete(hold.memberId);
    if (giveBack) s.left += hold.quantity;
    else s.stale = true;
  }

  function expire(s: SaleState, at: number) {
    while (s.expiries.length && s.expiries[0]!.at <= at) {
      const { orderId } = s.expiries.shift()!;
      const hold = s.holds.get(orderId);
      if (hold && hold.expiresAt !== null && hold.expiresAt <= at) drop(s, orderId, true);
    }
  }

  /** Reads the ledger and recounts; one read at a time per sale. */
  function sync(sale: GateSale, ledgerAvailable: () => Promise<number>): Promise<SaleState> {
    const running = syncing.get(sale.id);
    if (running) return running;
    const confirmsBefore = sales.get(sale.id)?.confirms ?? 0;
    const run = ledgerAvailable()
      .then((available) => {
        const known = sales.get(sale.id);
        if (known && known.confirms !== confirmsBefore) {
          // A hold was confirmed while the ledger was read: the count may miss it. Keep ours.
          known.syncedAt = now();
          return known;
        }
        const s: SaleState = known ?? {
          left: 0,
          issued: 0,
          holds: new Map(),
          members: new Map(),
          expiries: [],
          syncedAt: 0,
          stale: false,
          endsAt: sale.endsAt.getTime(),
          confirms: 0,
        };
        s.left = Math.max(0, available - unconfirmed(s));
        s.syncedAt = now();
        s.stale = false;
        sales.set(sale.id, s);
        return s;
      })
      .finally(() => syncing.delete(sale.id));
    syncing.set(sale.id, run);
    return run;
  }

  function forgetEnded(at: number) {
    for (const [id, s] of sales) if (s.endsAt < at - 60_000) sales.delete(id);
  }

  return {
    kind: 'memory',
    async admit(sale, orderId, memberId, quantity, ledgerAvailable) {
      let s = sales.get(sale.id) ?? (await sync(sale, ledgerAvailable));
      for (let attempt = 0; ; attempt++) {
        const at = now();
        const held = s.holds.get(orderId);
        if (held) return { ok: true, ticket: held.ticket, left: s.left };
        expire(s, at);
        if ((s.members.get(memberId) ?? 0) + quantity > sale.perMemberLimit) return { ok: false, reason: 'LIMIT' };
        if (s.left >= quantity) {
          const ticket = s.issued + 1;
          s.issued += quantity;
          s.left -= quantity;
          s.members.set(memberId, (s.members.get(memberId) ?? 0) + quantity);
          s.holds.set(orderId, { memberId, quantity, ticket, expiresAt: at + opts.holdMs });
          s.expiries.push({ orderId, at: at + opts.holdMs });
          return { ok: true, ticket, left: s.left };
        }
        // Short: releases by other replicas (or a refusal that made it stale) show in the ledger.
        if (attempt > 0 || (!s.stale && at - s.syncedAt < RESYNC_MS)) return { ok: false, reason: 'SOLD_OUT' };
        if (sales.size > 1_000) forgetEnded(at);
        s = await sync(sale, ledgerAvailable);
      }
    },
    async confirm(flashSaleId, orderId) {
      const s = sales.get(flashSaleId);
      const hold = s?.holds.get(orderId);
      if (s) s.confirms++;
      if (hold) hold.expiresAt = null;
    },
    async release(flashSaleId, orderId, giveBack) {
      const s = sales.get(flashSaleId);
      if (s) drop(s, orderId, giveBack);
    },
    async close() {
      sales.clear();
    },
  };
}

/** Not a contract with other services: only catalog replicas publish and read it. */
export const GATE_SUBJECT = 'catalog.flashgate.changed';

const gateMessage = z.object({
  from: z.string().min(1).max(64),
  kind: z.enum(['confirm', 'release']),
  flashSaleId: z.string().min(1).max(64),
  orderId: z.string().min(1).max(128),
  giveBack: z.boolean().optional(),
});

/**
 * Gates in the memory of several replicas tell each other what they confirm and release (core
 * NATS, no queue group): a checkout quoted by one replica is often reserved, given back or
 * released by another, and its hold must follow. A lost message costs at most a hold kept until
 * it expires, or a buyer the ledger turns away; never a unit sold twice.
 */
export function shareGateChanges(gate: FlashGate, nc: NatsConnection, onError: (err: unknown) => void): FlashGate {
  const replica = randomUUID();
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const sub = nc.subscribe(GATE_SUBJECT, {
    callback: (err, msg) => {
      if (err) return onError(err);
      try {
        const m = gateMessage.parse(JSON.parse(dec.decode(msg.data)));
        if (m.from === replica) return;
        const applied =
          m.kind === 'confirm' ? gate.confirm(m.flashSaleId, m.orderId) : gate.release(m.flashSaleId, m.orderId, m.giveBack ?? true);
        applied.catch(onError);
      } catch (e) {
        onError(e);
      }
    },
  });
  const tell = (body: Omit<z.infer<typeof gateMessage>, 'from'>) => {
    if (!nc.isClosed()) nc.publish(GATE_SUBJECT, enc.encode(JSON.stringify({ from: replica, ...body })));
  };
  return {
    kind: gate.kind,
    admit: (...args) => gate.admit(...args),
    async confirm(flashSaleId, orderId) {
      await gate.confirm(flashSaleId, orderId);
      tell({ kind: 'confirm', flashSaleId, orderId });
    },
    async release(flashSaleId, orderId, giveBack) {
      await gate.release(flashSaleId, orderId, giveBack);
      tell({ kind: 'release', flashSaleId, orderId, giveBack });
    },
    async close() {
      sub.unsubscribe();
      await gate.close();
    },
  };
}

// KEYS: state, holds, members, expiries. A hold is "memberId|quantity|ticket".
const EXPIRE_STALE = `
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, o in ipairs(stale) do
  local h = redis.call('HGET', KEYS[2], o)
  if h then
    local m, q = string.match(h, '^([^|]*)|(%d+)|')
    redis.call('HINCRBY', KEYS[1], 'left', q)
    if redis.call('HINCRBY', KEYS[3], m, -tonumber(q)) <= 0 then redis.call('HDEL', KEYS[3], m) end
    redis.call('HDEL', KEYS[2], o)
  end
  redis.call('ZREM', KEYS[4], o)
end
`;

// ARGV: now, orderId, memberId, quantity, limit, holdMs, expireAt
// → {1, ticket, left} | {0, 1 (LIMIT) | 2 (SOLD_OUT), syncedAt, stale} | {-1} (no state yet)
const ADMIT = `
local h = redis.call('HGET', KEYS[2], ARGV[2])
if h then
  local t = string.match(h, '|(%d+)$')
  return {1, tonumber(t), tonumber(redis.call('HGET', KEYS[1], 'left'))}
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
${EXPIRE_STALE}
local qty = tonumber(ARGV[4])
local used = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
if used + qty > tonumber(ARGV[5]) then return {0, 1, 0, 0} end
local left = tonumber(redis.call('HGET', KEYS[1], 'left'))
if left < qty then
  return {0, 2, tonumber(redis.call('HGET', KEYS[1], 'syncedAt') or '0'), tonumber(redis.call('HGET', KEYS[1], 'stale') or '0')}
end
local ticket = redis.call('HINCRBY', KEYS[1], 'issued', qty) - qty + 1
left = redis.call('HINCRBY', KEYS[1], 'left', -qty)
redis.call('HINCRBY', KEYS[3], ARGV[3], qty)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. '|' .. qty .. '|' .. ticket)
redis.call('ZADD', KEYS[4], tonumber(ARGV[1]) + tonumber(ARGV[6]), ARGV[2])
for i = 1, 4 do redis.call('PEXPIREAT', KEYS[i], ARGV[7]) end
return {1, ticket, left}
`;

// ARGV: now, ledger available, expireAt, confirms seen before the ledger was read.
// left = available − units held and not yet reserved; not applied when a hold was confirmed
// meanwhile (the read may predate it), except to build a gate that has no state yet.
const SYNC = `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('HGET', KEYS[1], 'confirms') or '0') ~= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'syncedAt', ARGV[1])
  return -1
end
${EXPIRE_STALE}
local pending = 0
for _, o in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local h = redis.call('HGET', KEYS[2], o)
  if h then pending = pending + tonumber(string.match(h, '^[^|]*|(%d+)|')) end
end
local left = tonumber(ARGV[2]) - pending
if left < 0 then left = 0 end
redis.call('HSET', KEYS[1], 'left', left, 'syncedAt', ARGV[1], 'stale', 0)
redis.call('HSETNX', KEYS[1], 'issued', 0)
for i = 1, 4 do redis.call('PEXPIREAT', KEYS[i], ARGV[3]) end
return left
`;

// ARGV: orderId
const CONFIRM = `
if redis.call('ZREM', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'confirms', 1) end
return 1
`;

// ARGV: orderId, giveBack (1|0)
const RELEASE = `
local h = redis.call('HGET', KEYS[2], ARGV[1])
if not h then return 0 end
local m, q = string.match(h, '^([^|]*)|(%d+)|')
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('HINCRBY', KEYS[3], m, -tonumber(q)) <= 0 then redis.call('HDEL', KEYS[3], m) end
if ARGV[2] == '1' then redis.call('HINCRBY', KEYS[1], 'left', q) else redis.call('HSET', KEYS[1], 'stale', 1) end
return 1
`;

type GateCommand = (...args: (string | number)[]) => Promise<unknown>;

/**
 * The gate shared by every catalog replica (REDIS_URL): each decision is one atomic script.
 * Redis holds no copy of anything that matters: its keys expire a day after the sale ends, and a
 * wiped gate is rebuilt from the ledger on the next admission.
 */
export function createRedisFlashGate(opts: { url: string; holdMs: number; keyPrefix?: string; now?: () => number }): FlashGate {
  const now = opts.now ?? Date.now;
  const redis = new Redis(opts.url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
  redis.defineCommand('flashAdmit', { numberOfKeys: 4, lua: ADMIT });
  redis.defineCommand('flashSync', { numberOfKeys: 4, lua: SYNC });
  redis.defineCommand('flashConfirm', { numberOfKeys: 4, lua: CONFIRM });
  redis.defineCommand('flashRelease', { numberOfKeys: 4, lua: RELEASE });
  const cmd = (name: string) => (redis as unknown as Record<string, GateCommand>)[name]!.bind(redis);
  const [admitScript, syncScript, confirmScript, releaseScript] = ['flashAdmit', 'flashSync', 'flashConfirm', 'flashRelease'].map(cmd);
  const prefix = opts.keyPrefix ?? 'flywheel:flash:';
  // A hash tag keeps a sale's keys in one slot of a Redis cluster (scripts need that).
  const keys = (id: string) => ['state', 'holds', 'members', 'expiries'].map((k) => `${prefix}{${id}}:${k}`);
  const expireAt = (sale: GateSale) => sale.endsAt.getTime() + 86_400_000;
  const syncing = new Map<string, Promise<unknown>>();

  function sync(sale: GateSale, ledgerAvailable: () => Promise<number>) {
    const running = syncing.get(sale.id);
    if (running) return running;
    const [state] = keys(sale.id);
    const run = redis
      .hget(state!, 'confirms')
      .then(async (confirms) => {
        const available = await ledgerAvailable();
        return syncScript!(...keys(sale.id), now(), available, expireAt(sale), Number(confirms ?? 0));
      })
      .finally(() => syncing.delete(sale.id));
    syncing.set(sale.id, run);
    return run;
  }

  return {
    kind: 'redis',
    async admit(sale, orderId, memberId, quantity, ledgerAvailable) {
      for (let attempt = 0; ; attempt++) {
        const at = now();
        const r = (await admitScript!(
          ...keys(sale.id),
          at,
          orderId,
          memberId,
          quantity,
          sale.perMemberLimit,
          opts.holdMs,
          expireAt(sale),
        )) as number[];
        if (r[0] === 1) return { ok: true, ticket: r[1]!, left: r[2]! };
        if (r[0] === 0 && r[1] === 1) return { ok: false, reason: 'LIMIT' };
        if (r[0] === 0 && (attempt > 0 || (r[3] !== 1 && at - r[2]! < RESYNC_MS))) return { ok: false, reason: 'SOLD_OUT' };
        if (attempt > 1) return { ok: false, reason: 'SOLD_OUT' };
        await sync(sale, ledgerAvailable);
      }
    },
    async confirm(flashSaleId, orderId) {
      await confirmScript!(...keys(flashSaleId), orderId);
    },
    async release(flashSaleId, orderId, giveBack) {
      await releaseScript!(...keys(flashSaleId), orderId, giveBack ? 1 : 0);
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
