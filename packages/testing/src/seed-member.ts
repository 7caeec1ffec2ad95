// The demo member of the local stack, through the gateway as the storefront would: signs up with
// the development login code, adds an address, favourites and views products, posts, buys the
// oatmeal (paid through the test provider's development route) and publishes its verified
// showcase (晒单), and comments and likes in the room that is live.
import { randomUUID } from 'node:crypto';
import { call } from './seed-gql';

export const DEMO_PHONE = '13800138000';

export async function seedDemoMember(
  gatewayUrl: string,
  opts: { productIds: string[]; liveRoomId: string; paymentsUrl?: string },
): Promise<{ id: string; token: string } | undefined> {
  // The demo member registers through the real login flow (development code provider).
  const { requestLoginCode } = await call<{ requestLoginCode: { devCode: string | null } }>(
    gatewayUrl,
    'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }',
    { p: DEMO_PHONE },
  );
  if (requestLoginCode.devCode) {
    const { login } = await call<{ login: { accessToken: string } }>(
      gatewayUrl,
      'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken } }',
      { p: DEMO_PHONE, c: requestLoginCode.devCode },
    );
    // The demo member's shipping address (their default: the first one).
    await call(
      gatewayUrl,
      'mutation($i: AddAddressInput!) { addAddress(input: $i) { address { id } } }',
      {
        i: {
          recipientName: '演示会员',
          phone: DEMO_PHONE,
          province: { code: '310000', name: '上海市' },
          city: { code: '310100', name: '上海市' },
          district: { code: '310104', name: '徐汇区' },
          detail: '漕溪北路 88 号 1201 室',
          label: '家',
        },
      },
      login.accessToken,
    );
    // 收藏与足迹: one favourite and two products in the demo member's recently viewed history.
    const member = login.accessToken;
    await call(
      gatewayUrl,
      'mutation($p: ID!) { addFavouriteProduct(input: { productId: $p }) { favourite { productId } } }',
      { p: opts.productIds[0] },
      member,
    );
    for (const p of [opts.productIds[1], opts.productIds[0]]) {
      await call(gatewayUrl, 'mutation($p: ID!) { recordProductView(input: { productId: $p }) { view { productId } } }', { p }, member);
    }
    // A community post about the product they like best.
    await call(
      gatewayUrl,
      'mutation($i: PublishPostInput!) { publishPost(input: $i) { id } }',
      { i: { body: '燕麦片配酸奶，早餐五分钟搞定，推荐！', productId: opts.productIds[0] } },
      member,
    );
    // In the room that is live: the demo member comments and likes.
    await call(
      gatewayUrl,
      'mutation($r: ID!) { postLiveComment(roomId: $r, body: "主播好！这款燕麦有小包装吗？") { id } }',
      { r: opts.liveRoomId },
      member,
    );
    await call(gatewayUrl, 'mutation($r: ID!) { likeLiveRoom(roomId: $r, count: 10) { total } }', { r: opts.liveRoomId }, member);
    if (opts.paymentsUrl) await seedVerifiedShowcase(gatewayUrl, opts.paymentsUrl, opts.productIds[0]!, member);
    const { me } = await call<{ me: { id: string } }>(gatewayUrl, '{ me { id } }', {}, member);
    return { id: me.id, token: member };
  }
  return undefined;
}

/**
 * A paid order for the product's first SKU, then its showcase (rating 5): community verifies it
 * once `orders.order.paid` reaches it, so the post is retried for a few seconds.
 */
async function seedVerifiedShowcase(gatewayUrl: string, paymentsUrl: string, productId: string, member: string): Promise<void> {
  const { product } = await call<{ product: { skus: { id: string }[] } }>(
    gatewayUrl,
    'query($id: ID!) { product(id: $id) { skus { id } } }',
    {
      id: productId,
    },
  );
  const skuId = product.skus[0]!.id;
  const { placeOrder } = await call<{ placeOrder: { id: string } }>(
    gatewayUrl,
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }] } },
    member,
  );
  const { payOrder } = await call<{ payOrder: { id: string } }>(
    gatewayUrl,
    'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }',
    { id: placeOrder.id },
    member,
  );
  const paid = await fetch(paymentsUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ intentId: payOrder.id }),
  });
  if (!paid.ok) throw new Error(`seed: the development payment answered ${paid.status}`);
  const input = { orderId: placeOrder.id, skuId, rating: 5, body: '回购第三次了，口感扎实不甜腻，早餐必备！' };
  for (let attempt = 0; ; attempt++) {
    try {
      await call(gatewayUrl, 'mutation($i: PostShowcaseInput!) { postShowcase(input: $i) { id } }', { i: input }, member);
      return;
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
