// The gateway's per-identity limits as pure functions: the token bucket, the client address
// behind N trusted proxies, and the calls an operation makes to budgeted root fields.
import type { IncomingMessage } from 'node:http';
import { parse, type OperationDefinitionNode } from 'graphql';
import { clientAddress, createRateLimiter, identityKey, rootCalls } from '../limiter';

describe('rate limiter (token bucket)', () => {
  test('a bucket of 3 per minute: three calls pass, the fourth waits 20 s; one token is back after 20 s', () => {
    let now = 1_000_000;
    const limiter = createRateLimiter(3, () => now);
    expect([1, 2, 3].map(() => limiter.take([['a', 1]]))).toEqual([0, 0, 0]);
    expect(limiter.take([['a', 1]])).toBe(20);
    expect(limiter.take([['b', 1]])).toBe(0); // another key has its own bucket
    now += 20_000;
    expect(limiter.take([['a', 1]])).toBe(0);
    expect(limiter.take([['a', 1]])).toBeGreaterThan(0);
  });

  test('a demand on several buckets is taken whole or not at all', () => {
    const limiter = createRateLimiter(3, () => 0);
    expect(limiter.take([['x', 2]])).toBe(0);
    expect(
      limiter.take([
        ['y', 3],
        ['x', 2],
      ]),
    ).toBeGreaterThan(0);
    expect(limiter.take([['y', 3]])).toBe(0); // y was not touched by the refused demand
  });

  test('more than a whole bucket in one demand is refused even when the bucket is full', () => {
    const limiter = createRateLimiter(3, () => 0);
    expect(limiter.take([['a', 4]])).toBe(60);
    expect(limiter.take([['a', 3]])).toBe(0);
  });
});

describe('client address', () => {
  const req = (peer: string, xff?: string) =>
    ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

  test('with no trusted hops the socket peer is the client, whatever X-Forwarded-For says', () => {
    expect(clientAddress(req('10.0.0.9', '203.0.113.1'), 0)).toBe('10.0.0.9');
  });

  test('with N trusted hops the client is the Nth X-Forwarded-For entry from the right', () => {
    const xff = '6.6.6.6, 203.0.113.5, 10.0.0.2';
    expect(clientAddress(req('10.0.0.1', xff), 1)).toBe('10.0.0.2');
    expect(clientAddress(req('10.0.0.1', xff), 2)).toBe('203.0.113.5');
  });

  test('more trusted hops than entries give the leftmost entry; no header gives the peer', () => {
    expect(clientAddress(req('10.0.0.1', '203.0.113.5'), 3)).toBe('203.0.113.5');
    expect(clientAddress(req('10.0.0.1'), 1)).toBe('10.0.0.1');
  });
});

describe('identity key', () => {
  test('a signed-in caller is their account; an anonymous one their address', () => {
    expect(identityKey('m1', '203.0.113.5')).toBe('id:m1');
    expect(identityKey(null, '203.0.113.5')).toBe('ip:203.0.113.5');
    expect(identityKey(null, '::ffff:203.0.113.5')).toBe('ip:203.0.113.5');
  });

  test('IPv6 clients are budgeted per /64: rotating the interface id does not give a new bucket', () => {
    expect(identityKey(null, '2001:db8:1:2::1')).toBe('ip:2001:db8:1:2::/64');
    expect(identityKey(null, '2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('ip:2001:db8:1:2::/64');
    expect(identityKey(null, '2001:db8:1:3::1')).not.toBe(identityKey(null, '2001:db8:1:2::1'));
  });
});

describe('calls to budgeted root fields', () => {
  const calls = (doc: string) => {
    const document = parse(doc);
    const op = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')!;
    return Object.fromEntries(rootCalls(document, op, new Set(['login', 'requestLoginCode'])));
  };

  test('each alias is a call; one response key is one call', () => {
    expect(calls('mutation { a: login(i: 1) { x } b: login(i: 2) { x } login { x } login { x } }')).toEqual({ login: 3 });
  });

  test('fields reached through inline and named fragments count; nested fields of the same name do not', () => {
    const doc = `mutation { ...M ... on Mutation { c: requestLoginCode { x } } other { login { x } } }
      fragment M on Mutation { a: requestLoginCode { x } b: requestLoginCode { x } ...M2 }
      fragment M2 on Mutation { login { x } }`;
    expect(calls(doc)).toEqual({ requestLoginCode: 3, login: 1 });
  });
});
