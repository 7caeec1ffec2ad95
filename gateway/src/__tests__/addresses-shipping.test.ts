// Shipping addresses (membership) and shipping fees (orders) through the gateway: real
// subgraphs, real FerretDB and NATS.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import type { RunningMembership } from '../../../services/membership/src/main';
import { paidOrder } from '../../../services/membership/src/__tests__/support';
import { asStaff, newCustomer, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
let staff: Record<string, string>;
beforeAll(async () => {
  stack = await startInProcessStack();
  staff = asStaff();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const membership = () => stack.subgraphs.membership as RunningMembership;
type Customer = ReturnType<typeof newCustomer>;

/** A registered member, signed in with a development login code (Member documents exist for `me`). */
async function register(): Promise<Customer> {
  const phone = `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
  const code = await gql(url(), 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const login = await gql(
    url(),
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: code.data!.requestLoginCode.devCode },
  );
  expect(login.errors).toBeUndefined();
  return { id: login.data!.login.session.member.id, headers: { authorization: `Bearer ${login.data!.login.accessToken}` } };
}

const ADDRESS = 'id recipientName phone province { code name } city { code name } district { code name } detail label isDefault';
const ADD = `mutation($i: AddAddressInput!) { addAddress(input: $i) { address { ${ADDRESS} } } }`;
const BOOK = `{ me { addresses { ${ADDRESS} } defaultAddress { id } } }`;
const SHANGHAI = {
  province: { code: '310000', name: '上海市' },
  city: { code: '310100', name: '上海市' },
  district: { code: '310104', name: '徐汇区' },
};
const BEIJING = {
  province: { code: '110000', name: '北京市' },
  city: { code: '110100', name: '北京市' },
  district: { code: '110105', name: '朝阳区' },
};
const XINJIANG = {
  province: { code: '650000', name: '新疆维吾尔自治区' },
  city: { code: '650100', name: '乌鲁木齐市' },
  district: { code: '650102', name: '天山区' },
};
const ORDER =
  'id total { amount } shippingFee { amount } shipping { fee { amount } baseFee { amount } waivedBy } shippingAddress { recipientName phone detail province { code } }';
const PLACE = `mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { ${ORDER} } }`;
const PREVIEW = `query($i: CheckoutPreviewInput!) { checkoutPreview(input: $i) { subtotal { amount } total { amount } shippingFee { amount } shipping { baseFee { amount } waivedBy } shippingAddress { detail } } }`;

async function addAddress(c: Customer, region: typeof SHANGHAI, extra: Record<string, unknown> = {}) {
  const res = await gql(
    url(),
    ADD,
    { i: { recipientName: '张三', phone: '+86 139-1234-5678', detail: '漕溪北路 88 号 1201 室', ...region, ...extra } },
    c.headers,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.addAddress.address;
}

async function createSku(price: number, stock = 100): Promise<string> {
  const res = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { skus { id } } }',
    { i: { name: `运费测试 ${randomUUID().slice(0, 6)}`, status: 'ON_SALE', skus: [{ name: '标准', price, stock, weightGrams: 500 }] } },
    staff,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createProduct.skus[0].id;
}

const TEMPLATE = {
  name: '全国运费',
  method: 'COUNT',
  // 首件 10 元, 续件 5 元 each; 上海 首件 6 元, 续件 2 元; 新疆 not delivered to; 满 200 元包邮.
  defaultRule: { first: 1, firstFee: 1000, additional: 1, additionalFee: 500 },
  regionRules: [{ provinceCodes: ['310000'], first: 1, firstFee: 600, additional: 1, additionalFee: 200 }],
  undeliverable: ['650000'],
  freeThreshold: 20000,
};

describe('addresses', () => {
  test('the first address is the default; adding another as default moves it; removing the default promotes the oldest', async () => {
    const c = await register();
    const first = await addAddress(c, SHANGHAI);
    expect(first).toMatchObject({ isDefault: true, phone: '13912345678', recipientName: '张三' });
    const second = await addAddress(c, BEIJING);
    expect(second.isDefault).toBe(false);
    const third = await addAddress(c, BEIJING, { isDefault: true, label: '公司' });
    let book = (await gql(url(), BOOK, {}, c.headers)).data!.me;
    expect(book.defaultAddress.id).toBe(third.id);
    expect(book.addresses.filter((a: { isDefault: boolean }) => a.isDefault)).toHaveLength(1);
    expect(book.addresses[0].id).toBe(third.id);

    const set = await gql(
      url(),
      'mutation($id: ID!) { setDefaultAddress(input: { addressId: $id }) { address { id isDefault } } }',
      { id: second.id },
      c.headers,
    );
    expect(set.data!.setDefaultAddress.address).toEqual({ id: second.id, isDefault: true });
    const removed = await gql(
      url(),
      'mutation($id: ID!) { removeAddress(input: { addressId: $id }) { removedAddressId defaultAddress { id } } }',
      { id: second.id },
      c.headers,
    );
    expect(removed.data!.removeAddress).toEqual({ removedAddressId: second.id, defaultAddress: { id: first.id } });
    book = (await gql(url(), BOOK, {}, c.headers)).data!.me;
    expect(book.addresses.map((a: { id: string }) => a.id)).toEqual([first.id, third.id]);
  });

  test("another member's address is never readable or changeable (NOT_FOUND, not FORBIDDEN); staff may read the book", async () => {
    const owner = await register();
    const other = await register();
    const a = await addAddress(owner, SHANGHAI);
    for (const [mutation, input] of [
      ['updateAddress', { addressId: a.id, detail: '被改了' }],
      ['removeAddress', { addressId: a.id }],
      ['setDefaultAddress', { addressId: a.id }],
    ] as const) {
      const field = mutation === 'removeAddress' ? 'removedAddressId' : 'address { id }';
      const res = await gql(
        url(),
        `mutation($i: ${mutation[0]!.toUpperCase()}${mutation.slice(1)}Input!) { ${mutation}(input: $i) { ${field} } }`,
        { i: input },
        other.headers,
      );
      expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    }
    // The other member's own book is empty; ordering to the owner's address is NOT_FOUND too.
    expect((await gql(url(), BOOK, {}, other.headers)).data!.me).toEqual({ addresses: [], defaultAddress: null });
    const skuId = await createSku(1000);
    const placed = await gql(
      url(),
      PLACE,
      { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }], addressId: a.id } },
      other.headers,
    );
    expect(placed.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // Staff read the owner's book; nobody else sees it on the Member entity.
    const asStaffRead = await gql(url(), `query($id: ID!) { member(id: $id) { addresses { id detail } } }`, { id: owner.id }, staff);
    expect(asStaffRead.data!.member.addresses).toEqual([{ id: a.id, detail: '漕溪北路 88 号 1201 室' }]);
    // Unchanged for the owner.
    expect((await gql(url(), BOOK, {}, owner.headers)).data!.me.addresses[0].detail).toBe('漕溪北路 88 号 1201 室');
  });

  test('bounded inputs name the field: a bad phone, a district outside its city, an over-long detail', async () => {
    const c = await register();
    const bad = async (extra: Record<string, unknown>, field: string) => {
      const res = await gql(
        url(),
        ADD,
        { i: { recipientName: '李四', phone: '13912345678', detail: '某路 1 号', ...SHANGHAI, ...extra } },
        c.headers,
      );
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    };
    await bad({ phone: '12345' }, 'phone');
    await bad({ district: { code: '110105', name: '朝阳区' } }, 'district.code');
    await bad({ detail: '路'.repeat(121) }, 'detail');
  });

  test('name, phone and detail are encrypted at rest', async () => {
    const c = await register();
    const a = await addAddress(c, SHANGHAI, { recipientName: '王小明', detail: '天钥桥路 999 号' });
    const raw = JSON.stringify(await membership().db.collection('addresses').findOne({ memberId: c.id }));
    expect(raw).toContain(a.province.code);
    for (const plain of ['王小明', '13912345678', '天钥桥路']) expect(raw).not.toContain(plain);
  });
});

describe('shipping fees', () => {
  beforeAll(async () => {
    const res = await gql(
      url(),
      'mutation($i: SetShippingTemplateInput!) { setShippingTemplate(input: $i) { template { version method freeThreshold { amount } } } }',
      { i: TEMPLATE },
      staff,
    );
    expect(res.errors).toBeUndefined();
    const customer = await gql(
      url(),
      'mutation($i: SetShippingTemplateInput!) { setShippingTemplate(input: $i) { template { version } } }',
      { i: TEMPLATE },
      newCustomer().headers,
    );
    expect(customer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  test('each region rule: the default rule, a province of its own, an undeliverable province refused', async () => {
    const skuId = await createSku(3000);
    const c = await register();
    const bj = await addAddress(c, BEIJING);
    const sh = await addAddress(c, SHANGHAI);
    const xj = await addAddress(c, XINJIANG);
    const lines = [{ skuId, quantity: 3 }];
    // Beijing (default rule): 10 + 2 × 5 = 20 元; the default address is used when none is named.
    const preview = await gql(url(), PREVIEW, { i: { lines } }, c.headers);
    expect(preview.data!.checkoutPreview).toMatchObject({
      subtotal: { amount: 9000 },
      shippingFee: { amount: 2000 },
      total: { amount: 11000 },
    });
    // Shanghai: 6 + 2 × 2 = 10 元.
    const order = (await gql(url(), PLACE, { i: { idempotencyKey: randomUUID(), lines, addressId: sh.id } }, c.headers)).data!.placeOrder;
    expect(order).toMatchObject({
      total: { amount: 10000 },
      shippingFee: { amount: 1000 },
      shipping: { baseFee: { amount: 1000 }, waivedBy: null },
    });
    expect(order.shippingAddress).toMatchObject({ recipientName: '张三', phone: '13912345678', province: { code: '310000' } });
    const refused = await gql(url(), PLACE, { i: { idempotencyKey: randomUUID(), lines, addressId: xj.id } }, c.headers);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'UNDELIVERABLE_REGION' });
    expect(bj.isDefault).toBe(true);

    // The snapshot on the order is encrypted at rest, and only the member and staff see it.
    const raw = JSON.stringify(await stack.orders.db.collection('orders').findOne({ _id: order.id }));
    for (const plain of ['张三', '13912345678', '漕溪北路']) expect(raw).not.toContain(plain);
    const q = `query($id: ID!) { order(id: $id) { shippingAddress { detail } } }`;
    expect((await gql(url(), q, { id: order.id }, staff)).data!.order.shippingAddress.detail).toBe('漕溪北路 88 号 1201 室');
    expect((await gql(url(), q, { id: order.id }, newCustomer().headers)).data?.order ?? null).toBeNull();

    // A changed template prices future checkouts only: the order keeps its fee.
    await gql(
      url(),
      'mutation($i: SetShippingTemplateInput!) { setShippingTemplate(input: $i) { template { version } } }',
      {
        i: { ...TEMPLATE, regionRules: [{ ...TEMPLATE.regionRules[0], firstFee: 900 }] },
      },
      staff,
    );
    expect(
      (await gql(url(), `query($id: ID!) { order(id: $id) { shippingFee { amount } } }`, { id: order.id }, c.headers)).data!.order
        .shippingFee.amount,
    ).toBe(1000);
    await gql(
      url(),
      'mutation($i: SetShippingTemplateInput!) { setShippingTemplate(input: $i) { template { version } } }',
      { i: TEMPLATE },
      staff,
    );
  });

  test('free shipping at the threshold (goods after discounts) and for a GOLD member, shown as waived', async () => {
    const skuId = await createSku(10000);
    const c = await register();
    await addAddress(c, BEIJING);
    const two = await gql(url(), PREVIEW, { i: { lines: [{ skuId, quantity: 2 }] } }, c.headers);
    expect(two.data!.checkoutPreview).toMatchObject({
      shippingFee: { amount: 0 },
      shipping: { baseFee: { amount: 1500 }, waivedBy: 'THRESHOLD' },
      total: { amount: 20000 },
    });
    const one = await gql(url(), PREVIEW, { i: { lines: [{ skuId, quantity: 1 }] } }, c.headers);
    expect(one.data!.checkoutPreview).toMatchObject({ shippingFee: { amount: 1000 }, shipping: { waivedBy: null } });

    const gold = await register();
    await addAddress(gold, BEIJING);
    await membership().modules.loyalty.loyalty.orderPaid(paidOrder(gold.id, 500_000)); // growth 5,000: GOLD
    const order = (await gql(url(), PLACE, { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }] } }, gold.headers)).data!
      .placeOrder;
    // GOLD: 2 % off the goods (9,800), and the 10 元 fee waived.
    expect(order).toMatchObject({
      total: { amount: 9800 },
      shippingFee: { amount: 0 },
      shipping: { baseFee: { amount: 1000 }, waivedBy: 'TIER' },
    });
  });

  async function paid(c: Customer, skuId: string, quantity: number) {
    const order = (await gql(url(), PLACE, { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity }] } }, c.headers)).data!
      .placeOrder;
    const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: order.id }, c.headers);
    const [delivery] = await stack.orders.payments.pay(intent.data!.payOrder.id);
    expect(delivery?.status).toBe(200);
    return order;
  }
  async function refund(c: Customer, orderId: string, skuId: string, quantity: number) {
    const req = await gql(
      url(),
      'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id amount { amount } } }',
      { i: { orderId, kind: 'REFUND_ONLY', lines: [{ skuId, quantity }], reason: '不想要了', idempotencyKey: randomUUID() } },
      c.headers,
    );
    expect(req.errors).toBeUndefined();
    const ok = await gql(
      url(),
      'mutation($id: ID!) { approveAfterSale(input: { afterSaleId: $id }) { status amount { amount } } }',
      { id: req.data!.requestAfterSale.id },
      staff,
    );
    expect(ok.data!.approveAfterSale.status).toBe('REFUNDED');
    return ok.data!.approveAfterSale.amount.amount as number;
  }

  test('a full refund returns the shipping fee too; a partial refund does not', async () => {
    const skuId = await createSku(2000);
    const c = await register();
    await addAddress(c, BEIJING);
    const full = await paid(c, skuId, 2); // 4,000 + 15 元 = 5,500
    expect(full.total.amount).toBe(5500);
    expect(await refund(c, full.id, skuId, 2)).toBe(5500);

    const partial = await paid(c, skuId, 2);
    expect(await refund(c, partial.id, skuId, 1)).toBe(2000); // the goods only
    expect(await refund(c, partial.id, skuId, 1)).toBe(3500); // the last unit: the rest, fee included
  });

  test("erasure (membership.member.erased) deletes the address book and blanks the orders' snapshots", async () => {
    const skuId = await createSku(1000);
    const c = await register();
    await addAddress(c, SHANGHAI);
    const order = (await gql(url(), PLACE, { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }] } }, c.headers)).data!
      .placeOrder;
    expect(order.shippingAddress).not.toBeNull();
    await membership().bus.publish('membership.member.erased', { memberId: c.id }, { id: randomUUID() });
    await eventually(async () => (await membership().db.collection('addresses').countDocuments({ memberId: c.id })) === 0);
    const raw = await eventually(async () => {
      const doc = await stack.orders.db.collection('orders').findOne({ _id: order.id as never });
      return doc && !doc.shippingAddress ? doc : null;
    });
    expect(raw.addressErasedAt).toBeInstanceOf(Date);
    const final = await stack.orders.db.collection('checkout_finals').findOne({ _id: `${order.id}:final` as never });
    expect(final?.order?.shippingAddress).toBeUndefined();
    const seen = await gql(
      url(),
      `query($id: ID!) { order(id: $id) { shippingFee { amount } shippingAddress { detail } } }`,
      { id: order.id },
      c.headers,
    );
    expect(seen.data!.order).toEqual({ shippingFee: { amount: 600 }, shippingAddress: null });
    expect((await gql(url(), BOOK, {}, c.headers)).data!.me).toEqual({ addresses: [], defaultAddress: null });
  });
});
