import { rankArticles } from '../service';

const day = (articleId: string, views: number, orders: number, gmv: number) => ({ articleId, views, orders, gmv });
const days = [
  day('a', 100, 2, 5000),
  day('a', 50, 1, -1000),
  day('b', 10, 3, 9000),
  day('c', 0, 1, 2000),
  day('d', 400, 0, 0),
  day('e', 0, 0, 0),
];
const ids = (r: { articleId: string }[]) => r.map((e) => e.articleId);

test('sums the days of each article and ranks by the measure, highest first', () => {
  expect(rankArticles(days, 'VIEWS', 10)).toEqual([
    { rank: 1, articleId: 'd', views: 400, orders: 0, gmv: { amount: 0, currency: 'CNY' }, conversion: 0 },
    { rank: 2, articleId: 'a', views: 150, orders: 3, gmv: { amount: 4000, currency: 'CNY' }, conversion: 0.02 },
    { rank: 3, articleId: 'b', views: 10, orders: 3, gmv: { amount: 9000, currency: 'CNY' }, conversion: 0.3 },
    { rank: 4, articleId: 'c', views: 0, orders: 1, gmv: { amount: 2000, currency: 'CNY' }, conversion: null },
  ]);
  // Ties by views, then id; an article with nothing in the window is not listed.
  expect(ids(rankArticles(days, 'ORDERS', 10))).toEqual(['a', 'b', 'c', 'd']);
  expect(ids(rankArticles(days, 'GMV', 10))).toEqual(['b', 'a', 'c', 'd']);
  // No views: no conversion, ranked last.
  expect(ids(rankArticles(days, 'CONVERSION', 10))).toEqual(['b', 'a', 'd', 'c']);
  expect(ids(rankArticles(days, 'VIEWS', 2))).toEqual(['d', 'a']);
});
