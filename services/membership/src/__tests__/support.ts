import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { connect, type NatsConnection } from 'nats';
import { envelope, type EventData, type EventEnvelope } from '@flywheel/events';
import { privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../config';
import { start, type RunningMembership, type StartOptions } from '../main';

/** An order of one line at `total` fen, paid now (or at `paidAt`), with a fresh id unless given. */
export function paidOrder(memberId: string, total: number, opts: { orderId?: string; paidAt?: Date } = {}): EventData<'orders.order.paid'> {
  const orderId = opts.orderId ?? new Types.ObjectId().toHexString();
  return {
    orderId,
    memberId,
    total,
    currency: 'CNY',
    lines: [{ skuId: 'sku-1', productId: 'p-1', quantity: 1, unitPrice: total, priceKind: 'LIST' }],
    source: { kind: 'DIRECT' },
    paymentId: `pay-${orderId}`,
    paidAt: (opts.paidAt ?? new Date()).toISOString(),
  };
}

/** `paidOrder` as its event, with a fresh event id. */
export const paidEvent = (
  memberId: string,
  total: number,
  opts: { orderId?: string; paidAt?: Date } = {},
): EventEnvelope<'orders.order.paid'> => envelope('orders.order.paid', paidOrder(memberId, total, opts), { id: randomUUID() });

export interface MembershipUnderTest {
  svc: RunningMembership;
  /** The service's private NATS. */
  nats: InfraProcess;
  /** A client on the service's NATS, for request/reply. */
  nc: NatsConnection;
  /** Closes the client, drops the database, stops the service and its NATS. */
  stop(): Promise<void>;
}

/** Membership on a private NATS and its own database, sweepers off (tests drive them). */
export async function startMembership(opts: StartOptions = {}): Promise<MembershipUnderTest> {
  const nats = await privateNats();
  const svc = await start(loadServiceConfig(serviceEnv('membership', nats.url)), { sweepers: false, ...opts });
  const nc = await connect({ servers: nats.url });
  return {
    svc,
    nats,
    nc,
    async stop() {
      await nc.close();
      await svc.db.dropDatabase();
      await svc.stop();
      await nats.stop();
    },
  };
}
