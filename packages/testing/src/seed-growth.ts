// The demo's growth layer (裂变), created by staff through the gateway: an invite campaign (both
// sides rewarded on the invitee's first paid order), a group-buy offer (3 people, 24 h), a bargain
// offer (5 helpers to the floor) and the demo member approved as a distributor.
import { randomUUID } from 'node:crypto';
import { call } from './seed-gql';

export async function seedGrowth(
  gatewayUrl: string,
  staff: string,
  opts: { productIds: string[]; welcomeTemplateId: string; member?: { id: string; token: string } },
): Promise<void> {
  await call(
    gatewayUrl,
    'mutation($i: SetInviteCampaignInput!) { setInviteCampaign(input: $i, expectedVersion: 0) { version } }',
    {
      i: {
        active: true,
        inviterReward: { points: 200 },
        inviteeReward: { couponTemplateId: opts.welcomeTemplateId },
        capPerInviterPerDay: 20,
        capPerInviterPerMonth: 200,
        afterSalesWindowDays: 7,
      },
    },
    staff,
  );
  const skuOf = async (productId: string) =>
    (
      await call<{ product: { skus: { id: string; price: { amount: number } }[] } }>(
        gatewayUrl,
        'query($id: ID!) { product(id: $id) { skus { id price { amount } } } }',
        { id: productId },
      )
    ).product.skus[0]!;
  const now = Date.now();
  const groupSku = await skuOf(opts.productIds[2]!);
  await call(
    gatewayUrl,
    'mutation($i: CreateGroupBuyOfferInput!) { createGroupBuyOffer(input: $i) { id } }',
    {
      i: {
        skuId: groupSku.id,
        groupSize: 3,
        groupPrice: Math.floor((groupSku.price.amount * 6) / 10),
        durationMinutes: 24 * 60,
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + 14 * 86_400_000).toISOString(),
        stockCap: 60,
        perMemberLimit: 2,
        virtualCompletion: false,
        idempotencyKey: `seed-groupbuy-${randomUUID()}`,
      },
    },
    staff,
  );
  const bargainSku = await skuOf(opts.productIds[4]!);
  await call(
    gatewayUrl,
    'mutation($i: CreateBargainOfferInput!) { createBargainOffer(input: $i) { id } }',
    {
      i: {
        skuId: bargainSku.id,
        floorPrice: Math.floor(bargainSku.price.amount / 2),
        helpersNeeded: 5,
        durationHours: 24,
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + 14 * 86_400_000).toISOString(),
        stock: 50,
        idempotencyKey: `seed-bargain-${randomUUID()}`,
      },
    },
    staff,
  );
  if (opts.member) {
    await call(gatewayUrl, 'mutation { applyForDistributor { status } }', {}, opts.member.token);
    await call(gatewayUrl, 'mutation($m: ID!) { approveDistributor(memberId: $m) { status } }', { m: opts.member.id }, staff);
  }
}
