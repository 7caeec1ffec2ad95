import { activityStatus, bannerFor, bannerLive, checkActivity, checkLink } from '../service';

const at = new Date('2025-06-18T12:00:00Z');
const plus = (s: number) => new Date(at.getTime() + s * 1000);

test('status and countdown follow the window at the clock given', () => {
  expect(activityStatus({ startsAt: plus(90), endsAt: plus(600) }, at)).toEqual({ status: 'UPCOMING', countdown: 90 });
  expect(activityStatus({ startsAt: plus(-90), endsAt: plus(600) }, at)).toEqual({ status: 'ONGOING', countdown: 600 });
  expect(activityStatus({ startsAt: plus(-90), endsAt: plus(0) }, at)).toEqual({ status: 'ENDED', countdown: 0 });
});

test('an anonymous viewer sees ALL banners in their window only', () => {
  const link = { kind: 'EXTERNAL' as const, refId: null, url: 'https://example.com' };
  const all = { kind: 'ALL' as const, segment: null, tier: null };
  const base = { id: 'b', title: 't', imageUrl: 'https://x', link, startsAt: null, endsAt: null, audience: all };
  expect(bannerLive(base, at)).toBe(true);
  expect(bannerLive({ ...base, startsAt: plus(1) }, at)).toBe(false);
  expect(bannerLive({ ...base, endsAt: plus(0) }, at)).toBe(false);
  expect(bannerLive({ ...base, audience: { kind: 'TIER', segment: null, tier: 'GOLD' } }, at)).toBe(false);
});

test('a member also sees the banners of their tier or segment, never another tier or segment', () => {
  const link = { kind: 'EXTERNAL' as const, refId: null, url: 'https://example.com' };
  const base = { id: 'b', title: 't', imageUrl: 'https://x', link, startsAt: null, endsAt: null };
  const all = { ...base, audience: { kind: 'ALL' as const, segment: null, tier: null } };
  const gold = { ...base, audience: { kind: 'TIER' as const, segment: null, tier: 'GOLD' } };
  const vip = { ...base, audience: { kind: 'SEGMENT' as const, segment: 'IMPORTANT_VALUE', tier: null } };
  const member = { tier: 'GOLD' as const, segment: 'NEW' as const };
  expect([all, gold, vip].map((b) => bannerFor(b, member))).toEqual([true, true, false]);
  expect([all, gold, vip].map((b) => bannerFor(b, { tier: 'SILVER', segment: 'IMPORTANT_VALUE' }))).toEqual([true, false, true]);
  expect([all, gold, vip].map((b) => bannerFor(b, null))).toEqual([true, false, false]);
  // Targeted and out of its window: not shown.
  expect(bannerLive({ ...gold, endsAt: plus(-1) }, at, member)).toBe(false);
  expect(bannerLive(gold, at, member)).toBe(true);
});

test('links and windows are checked, naming the field', () => {
  expect(() => checkLink({ kind: 'EXTERNAL', url: 'http://example.com' }, 'link')).toThrow(
    expect.objectContaining({ extensions: expect.objectContaining({ field: 'link.url' }) }),
  );
  expect(() => checkLink({ kind: 'ARTICLE', refId: 'x' }, 'link')).toThrow(
    expect.objectContaining({ extensions: expect.objectContaining({ field: 'link.refId' }) }),
  );
  expect(() => checkActivity({ title: 'x', startsAt: plus(10), endsAt: plus(5) })).toThrow(
    expect.objectContaining({ extensions: expect.objectContaining({ field: 'activity.endsAt' }) }),
  );
});
