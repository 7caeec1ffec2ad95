import { AppError } from '../errors';
import { BusRequestError, fromBusError } from '../bus';
import { isHost, isSelf, isSelfOrStaff, isStaff, requireRole, requireSelfOrStaff } from '../auth';
import {
  afterTimeCursor,
  decodeSeqCursor,
  decodeTimeCursor,
  encodeSeqCursor,
  encodeTimeCursor,
  pageSize,
  seqPage,
  timePage,
} from '../paging';
import { httpUrl, isObjectId, optionalText, requireObjectId, text, wholeNumber } from '../validate';
import type { Viewer } from '../tokens';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? { code: err.extensions.code, field: err.extensions.field } : { thrown: String(err) };
  }
  return null;
};

describe('input rules (kit)', () => {
  it('text trims, counts code points and names the field', () => {
    expect(text('  燕麦  ', 'name', 2)).toBe('燕麦');
    // Two emoji are four UTF-16 units but two characters.
    expect(text('😀😀', 'name', 2)).toBe('😀😀');
    expect(codeOf(() => text('abc', 'name', 2))).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
    expect(codeOf(() => text('   ', 'name', 2))).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
    expect(codeOf(() => text('a', 'name', 5, { min: 2 }))).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
    expect(text(null, 'note', 5, { optional: true })).toBe('');
    expect(optionalText('  ', 'note', 5)).toBeNull();
    expect(optionalText(' x ', 'note', 5)).toBe('x');
  });

  it('ids, URLs and whole numbers', () => {
    expect(isObjectId('0123456789abcdef01234567')).toBe(true);
    expect(isObjectId('0123456789abcdef0123456')).toBe(false);
    expect(isObjectId(42)).toBe(false);
    expect(codeOf(() => requireObjectId('nope', 'skuId'))).toEqual({ code: 'BAD_USER_INPUT', field: 'skuId' });
    expect(httpUrl('https://cdn.example.com/a.jpg', 'url', 100)).toBe('https://cdn.example.com/a.jpg');
    expect(codeOf(() => httpUrl('javascript:alert(1)', 'url', 100))).toEqual({ code: 'BAD_USER_INPUT', field: 'url' });
    expect(codeOf(() => httpUrl('/relative', 'url', 100))).toEqual({ code: 'BAD_USER_INPUT', field: 'url' });
    expect(wholeNumber(3, 'n', 1, 5)).toBe(3);
    for (const bad of [0, 6, 1.5, Number.NaN, null])
      expect(codeOf(() => wholeNumber(bad, 'n', 1, 5))).toEqual({ code: 'BAD_USER_INPUT', field: 'n' });
  });

  it('self or staff', () => {
    const member: Viewer = { id: 'm1', roles: ['CUSTOMER'] } as Viewer;
    const staff: Viewer = { id: 's1', roles: ['STAFF'] } as Viewer;
    expect(isSelf(member, 'm1')).toBe(true);
    expect(isSelf(member, 'm2')).toBe(false);
    expect(isSelfOrStaff(staff, 'm2')).toBe(true);
    expect(isSelfOrStaff(null, 'm1')).toBe(false);
    expect(codeOf(() => requireSelfOrStaff(member, 'm2'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(codeOf(() => requireSelfOrStaff(null, 'm1'))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(requireSelfOrStaff(member, 'm1')).toBe(member);
  });

  it('roles: a host is neither staff nor a member; requireRole takes one role or several', () => {
    const host: Viewer = { id: 'h1', roles: ['HOST'], scopes: [] };
    const staff: Viewer = { id: 's1', roles: ['STAFF'], scopes: [] };
    expect([isHost(host), isStaff(host), isSelfOrStaff(host, 'h1')]).toEqual([true, false, false]);
    expect(isHost(staff)).toBe(false);
    expect(requireRole(host, 'HOST')).toBe(host);
    expect(requireRole(host, ['STAFF', 'HOST'])).toBe(host);
    expect(requireRole(staff, ['STAFF', 'HOST'])).toBe(staff);
    expect(codeOf(() => requireRole(host, 'STAFF'))).toMatchObject({ code: 'FORBIDDEN' });
    expect(codeOf(() => requireRole({ id: 'm1', roles: ['CUSTOMER'], scopes: [] }, ['STAFF', 'HOST']))).toMatchObject({
      code: 'FORBIDDEN',
    });
    expect(codeOf(() => requireRole(null, ['STAFF', 'HOST']))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('one seq cursor: round trip, refusals, pages', () => {
    expect(decodeSeqCursor(encodeSeqCursor(42))).toBe(42);
    expect(decodeSeqCursor(null)).toBeNull();
    expect(codeOf(() => decodeSeqCursor('!!!'))).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(codeOf(() => decodeSeqCursor(encodeSeqCursor(0)))).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(pageSize(undefined, 100)).toBe(20);
    expect(codeOf(() => pageSize(101, 100))).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    const entries = [5, 4, 3].map((seq) => ({ seq }));
    const page = seqPage(entries, 2, (e) => e.seq * 10);
    expect(page.edges.map((e) => e.node)).toEqual([50, 40]);
    expect(page.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeSeqCursor(4) });
    expect(seqPage(entries.slice(0, 2), 2, (e) => e.seq).pageInfo.hasNextPage).toBe(false);
  });

  it('one time cursor: round trip with ties broken by id, refusals, pages', () => {
    const at = new Date('2026-03-03T04:00:00.123Z');
    expect(decodeTimeCursor(encodeTimeCursor(at, 'm1:p:2'))).toEqual({ at, id: 'm1:p:2' });
    expect(decodeTimeCursor(undefined)).toBeNull();
    expect(codeOf(() => decodeTimeCursor('!!!'))).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(codeOf(() => decodeTimeCursor(Buffer.from('x:y').toString('base64url')))).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(codeOf(() => decodeTimeCursor(Buffer.from('12:').toString('base64url'), 'before'))).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'before',
    });
    expect(afterTimeCursor(null)).toEqual({});
    expect(afterTimeCursor({ at, id: 'b' })).toEqual({ $or: [{ at: { $lt: at } }, { at, _id: { $lt: 'b' } }] });
    const entries = ['c', 'b', 'a'].map((_id) => ({ _id, at }));
    const page = timePage(entries, 2, (e) => e._id);
    expect(page.edges.map((e) => e.node)).toEqual(['c', 'b']);
    expect(page.pageInfo).toEqual({ hasNextPage: true, endCursor: encodeTimeCursor(at, 'b') });
    expect(timePage(entries, 3, (e) => e._id).pageInfo.hasNextPage).toBe(false);
  });

  it('a bus refusal keeps its code; an unknown code is internal; other errors pass through', () => {
    expect(codeOf(() => fromBusError(new BusRequestError('OUT_OF_STOCK', 'gone')))).toMatchObject({ code: 'OUT_OF_STOCK' });
    expect(codeOf(() => fromBusError(new BusRequestError('WHATEVER', 'x')))).toMatchObject({ code: 'INTERNAL_SERVER_ERROR' });
    expect(codeOf(() => fromBusError(new TypeError('boom')))).toEqual({ thrown: 'TypeError: boom' });
  });
});
