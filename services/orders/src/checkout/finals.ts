import { AppError, claimOnce, isDuplicateKey, type Logger } from '@flywheel/service-kit';
import type { CatalogClient } from '../clients/catalog';
import type { Models, OrderDoc } from '../order/model';
import { codeOf } from '../types';
import type { CheckoutFinalDoc, CheckoutModels } from './model';
import type { QuoteAdjuster } from './pricing';
import type { UnpaidHolds } from './unpaid';

export const finalIdOf = (checkoutId: string) => `${checkoutId}:final`;

export const abandoned = () => new AppError('CONFLICT', 'This checkout did not finish in time and was abandoned; start a new checkout');
export const keyReused = () => new AppError('CONFLICT', 'This idempotency key was already used for a different order');

export interface FinalsDeps {
  models: Pick<Models, 'Order'> & CheckoutModels;
  catalog: Pick<CatalogClient, 'release'>;
  unpaid: Pick<UnpaidHolds, 'release'>;
  adjusters: readonly QuoteAdjuster[];
  kick: () => void;
  now: () => Date;
  logger?: Pick<Logger, 'warn' | 'error'>;
  /** Pays an order whose total is 0 at once (payments' settlement); idempotent. */
  settleFree?: (order: OrderDoc) => Promise<unknown>;
}

/**
 * A checkout's one decision (`checkout_finals/<id>:final`) and what follows it: the order of a
 * PLACED decision, the answer every replay gets, and giving back what a checkout that did not
 * place an order holds.
 */
export function createCheckoutFinals(deps: FinalsDeps) {
  const { models, catalog, adjusters, now } = deps;

  const finalOf = (checkoutId: string) => models.CheckoutFinal.findById(finalIdOf(checkoutId)).lean<CheckoutFinalDoc>();
  const settle = (checkoutId: string) => models.Checkout.updateOne({ _id: checkoutId }, { $set: { settledAt: now() } });

  /**
   * Gives back everything a checkout may hold: stock, then whatever adjusters locked (unless
   * catalog refused the reservation as a whole: then nothing was reserved or locked), then the
   * member's unpaid allowance, taken before reserving.
   */
  async function releaseHolds(checkoutId: string, memberId: string, reserved = true): Promise<void> {
    if (reserved) {
      await catalog.release(checkoutId);
      for (const a of adjusters) await a.release(checkoutId);
    }
    await deps.unpaid.release(memberId, checkoutId);
  }

  /**
   * The order of a PLACED decision exists afterwards, whoever inserts it; a zero-total one is paid
   * too. The checkout is settled only then, so a crash in between leaves it to the recovery sweeper.
   */
  async function finish(order: OrderDoc): Promise<OrderDoc> {
    try {
      await models.Order.create(order);
      deps.kick();
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    if (order.total === 0 && deps.settleFree) {
      try {
        await deps.settleFree(order);
      } catch (err) {
        deps.logger?.warn({ err, orderId: order._id }, 'zero-total settlement failed; a replay or the recovery sweeper pays it');
        return order;
      }
    }
    await settle(order._id);
    return order;
  }

  /** What a decided checkout answers, to the request that decided it and to every replay. */
  async function answer(final: CheckoutFinalDoc, requestHash: string): Promise<OrderDoc> {
    if (final.requestHash !== requestHash) throw keyReused();
    if (final.outcome === 'PLACED') {
      const order = await models.Order.findById(final.checkoutId).lean<OrderDoc>();
      if (!order) return finish(final.order!);
      // A replay of a zero-total checkout finishes a settlement its first request may not have.
      if (order.total === 0) await deps.settleFree?.(order);
      return order;
    }
    if (final.outcome === 'FAILED') throw new AppError(final.error!.code as never, final.error!.message);
    throw abandoned();
  }

  async function decidedByOther(checkoutId: string, requestHash: string): Promise<OrderDoc> {
    const final = await finalOf(checkoutId);
    if (!final) throw new Error(`checkout ${checkoutId}: claim lost but no decision found`);
    return answer(final, requestHash);
  }

  /** A failure after the checkout was recorded: decide FAILED, then give back what it holds. */
  async function fail(checkoutId: string, memberId: string, requestHash: string, err: unknown, held: boolean): Promise<OrderDoc> {
    const code = codeOf(err);
    if (!code) deps.logger?.error({ err, checkoutId }, 'checkout failed');
    const error = code ? { code, message: (err as Error).message } : { code: 'INTERNAL_SERVER_ERROR', message: 'Checkout failed' };
    const won = await claimOnce(models.CheckoutFinal, {
      _id: finalIdOf(checkoutId),
      checkoutId,
      outcome: 'FAILED',
      requestHash,
      at: now(),
      error,
    });
    // A racing replay decided first: its answer is this checkout's answer.
    if (!won) return decidedByOther(checkoutId, requestHash);
    try {
      await releaseHolds(checkoutId, memberId, held);
    } catch (releaseErr) {
      // Left unsettled: the recovery sweeper releases it.
      deps.logger?.warn({ err: releaseErr, checkoutId }, 'release after a failed checkout failed; the sweeper retries');
      throw err;
    }
    await settle(checkoutId);
    throw err;
  }

  return { finalOf, settle, releaseHolds, finish, answer, decidedByOther, fail };
}
