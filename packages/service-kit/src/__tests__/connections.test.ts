import { GraphQLError } from 'graphql';
import { Schema, Types, type Connection, type Model } from 'mongoose';
import { mongoUrl, uniqueDbName } from '@flywheel/testing';
import { byIdLoader, connectMongo, MAX_PAGE, paginate, type Connection as Page } from '@flywheel/service-kit';

// Relay connections and by-id loading against the real FerretDB.

interface Note {
  _id: Types.ObjectId;
  owner: string;
  n: number;
}
interface Claimed {
  _id: string;
  owner: string;
  at: Date;
}

let db: Connection;
let Notes: Model<Note>;
let Claims: Model<Claimed>;
const noteIds: Types.ObjectId[] = [];

beforeAll(async () => {
  db = await connectMongo(mongoUrl(), uniqueDbName('conn'));
  Notes = db.model<Note>('Note', new Schema<Note>({ owner: String, n: Number }, { versionKey: false }));
  Claims = db.model<Claimed>('Claimed', new Schema<Claimed>({ _id: String, owner: String, at: Date }, { versionKey: false }));
  // Seven notes for alice (ObjectIds increase in creation order), two for bob.
  for (let n = 1; n <= 7; n++) noteIds.push((await Notes.create({ owner: 'alice', n }))._id);
  await Notes.create([
    { owner: 'bob', n: 100 },
    { owner: 'bob', n: 101 },
  ]);
  // Hash-like ids that are not time-ordered, with ties on `at`.
  const t = Date.UTC(2030, 0, 1);
  await Claims.create([
    { _id: 'c9f1', owner: 'alice', at: new Date(t + 1000) },
    { _id: '0a42', owner: 'alice', at: new Date(t + 3000) },
    { _id: 'ff00', owner: 'alice', at: new Date(t + 2000) },
    { _id: '7b7b', owner: 'alice', at: new Date(t + 2000) },
    { _id: '1c1c', owner: 'alice', at: new Date(t + 2000) },
    { _id: 'zzzz', owner: 'bob', at: new Date(t + 9000) },
  ]);
});
afterAll(async () => {
  await db.dropDatabase();
  await db.close();
});

async function codeOf(p: Promise<unknown>): Promise<{ code: unknown; field: unknown }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GraphQLError);
  const ext = (err as GraphQLError).extensions;
  return { code: ext.code, field: ext.field };
}
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('pages newest first by _id; following endCursor visits every node once, then stops', async () => {
  const seen: number[] = [];
  let after: string | null = null;
  const pages: boolean[] = [];
  for (;;) {
    const page: Page<Note> = await paginate(Notes, { owner: 'alice' }, { first: 3, after });
    seen.push(...page.edges.map((e) => e.node.n));
    pages.push(page.pageInfo.hasNextPage);
    expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1]);
  expect(pages).toEqual([true, true, false]);
});

test('each edge cursor resumes right after its node', async () => {
  const all = await paginate(Notes, { owner: 'alice' }, { first: 7 });
  expect(all.pageInfo.hasNextPage).toBe(false);
  const third = all.edges[2]!;
  const rest = await paginate(Notes, { owner: 'alice' }, { first: 10, after: third.cursor });
  expect(rest.edges.map((e) => String(e.node._id))).toEqual(noteIds.slice(0, 4).reverse().map(String));
});

test('a page size defaults to 20 and is bounded to 1..MAX_PAGE', async () => {
  expect((await paginate(Notes, {}, {})).edges).toHaveLength(9);
  expect((await paginate(Notes, {}, { first: MAX_PAGE })).edges).toHaveLength(9);
  for (const first of [0, -1, MAX_PAGE + 1, 1.5]) {
    expect(await codeOf(paginate(Notes, {}, { first }))).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
  }
});

test('an invalid cursor is BAD_USER_INPUT on `after`', async () => {
  const bad = [
    'not a cursor at all',
    cursorOf({ id: String(noteIds[0]) }), // not an array
    cursorOf([42]), // id not a string
    cursorOf(['not-an-object-id']), // id the schema cannot cast
    Buffer.from('{"unterminated').toString('base64url'),
  ];
  for (const after of bad) {
    expect(await codeOf(paginate(Notes, { owner: 'alice' }, { first: 2, after }))).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
  }
  // Ordered by a date field: the cursor must carry the date too.
  const noDate = cursorOf(['7b7b']);
  expect(await codeOf(paginate(Claims, {}, { first: 2, after: noDate }, { by: 'at' }))).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
});

test('ordered by a date field then _id: ties are split by _id and nothing is skipped or repeated', async () => {
  const seen: string[] = [];
  let after: string | null = null;
  for (let i = 0; i < 10; i++) {
    const page: Page<Claimed> = await paginate(Claims, { owner: 'alice' }, { first: 2, after }, { by: 'at' });
    seen.push(...page.edges.map((e) => e.node._id));
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  expect(seen).toEqual(['0a42', 'ff00', '7b7b', '1c1c', 'c9f1']);
});

test('byIdLoader: one answer per id asked, in order; missing and malformed ids are null', async () => {
  const loader = byIdLoader(Notes);
  const missing = new Types.ObjectId().toHexString();
  const asked = [String(noteIds[3]), 'garbage', missing, String(noteIds[0]), String(noteIds[3])];
  const got = await loader.loadMany(asked);
  expect(got.map((d) => (d && !(d instanceof Error) ? d.n : null))).toEqual([4, null, null, 1, 4]);
});
