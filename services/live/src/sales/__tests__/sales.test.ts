// Pure rules of the room report: the viewer key, the running totals of a paid order, the ranking.
import type { Viewer } from '@flywheel/service-kit';
import { addPaid, rankProducts, viewerKey } from '../service';

test('a signed-in viewer is keyed by id; a visitor by a bounded client id', () => {
  expect(viewerKey({ id: 'abc', roles: ['CUSTOMER'] } as Viewer, 'ignored')).toBe('m:abc');
  expect(viewerKey(null, ' visitor-1234 ')).toBe('v:visitor-1234');
  for (const bad of [null, '', 'short', 'x'.repeat(65), 'has space 123', '访客访客访客访客访客']) {
    expect(() => viewerKey(null, bad)).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    );
  }
});

test('a paid order adds to the totals and its lines to the products; a repeat buyer is not counted twice', () => {
  const first = addPaid(
    null,
    {
      total: 5000,
      lines: [
        { productId: 'p1', quantity: 2, unitPrice: 2000 },
        { productId: 'p2', quantity: 1, unitPrice: 1000 },
      ],
    },
    true,
  );
  expect(first).toEqual({
    orders: 1,
    gmv: 5000,
    refunded: 0,
    buyers: 1,
    products: [
      { productId: 'p1', units: 2, gmv: 4000 },
      { productId: 'p2', units: 1, gmv: 1000 },
    ],
  });
  const second = addPaid({ ...first, refunded: 300 }, { total: 3000, lines: [{ productId: 'p2', quantity: 3, unitPrice: 1000 }] }, false);
  expect(second).toMatchObject({ orders: 2, gmv: 8000, refunded: 300, buyers: 1 });
  expect(first.products[1]).toEqual({ productId: 'p2', units: 1, gmv: 1000 }); // the head is never changed
  expect(rankProducts(second.products, 10).map((p) => p.productId)).toEqual(['p2', 'p1']);
  expect(rankProducts(second.products, 1)).toHaveLength(1);
  expect(rankProducts(second.products, -5)).toHaveLength(0);
});
