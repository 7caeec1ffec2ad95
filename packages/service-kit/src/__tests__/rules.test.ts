import { AppError } from '../errors';
import { BusRequestError, fromBusError } from '../bus';
import { isSelf, isSelfOrStaff, requireSelfOrStaff } from '../auth';
import { decodeSeqCursor, encodeSeqCursor, pageSize, seqPage } from '../paging';
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

  it('a bus refusal keeps its code; an unknown code is internal; other errors pass through', () => {
    expect(codeOf(() => fromBusError(new BusRequestError('OUT_OF_STOCK', 'gone')))).toMatchObject({ code: 'OUT_OF_STOCK' });
    expect(codeOf(() => fromBusError(new BusRequestError('WHATEVER', 'x')))).toMatchObject({ code: 'INTERNAL_SERVER_ERROR' });
    expect(codeOf(() => fromBusError(new TypeError('boom')))).toEqual({ thrown: 'TypeError: boom' });
  });
});
