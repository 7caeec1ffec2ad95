import { buildSchema, graphql } from 'graphql';
import { boundInputs, DEFAULT_INPUT_BOUNDS } from '@flywheel/service-kit';

// Pure: a schema, its resolvers and graphql-js execution; no I/O.

const SDL = `
  type Query { search(keyword: String, ids: [ID!]): Int, echo(text: String): String }
  type Mutation { register(input: RegisterInput!): Int }
  input RegisterInput { name: String!, inviteCode: String, bio: String, lines: [LineInput!], nested: RegisterInput }
  input LineInput { skuId: ID!, quantity: Int! }
`;

function setup(overrides = {}) {
  const calls: unknown[] = [];
  const schema = buildSchema(SDL);
  const record = (_: unknown, args: unknown) => {
    calls.push(args);
    return 1;
  };
  schema.getQueryType()!.getFields().search!.resolve = record;
  schema.getMutationType()!.getFields().register!.resolve = record;
  boundInputs(schema, overrides);
  const run = (source: string, variableValues?: Record<string, unknown>) => graphql({ schema, source, variableValues });
  return { run, calls };
}

const codeOf = (r: Awaited<ReturnType<ReturnType<typeof setup>['run']>>) => r.errors?.[0]?.extensions;

test('a 20,000-character string is refused by default, naming the field, and the resolver never runs', async () => {
  const { run, calls } = setup();
  const r = await run('mutation($i: RegisterInput!) { register(input: $i) }', { i: { name: 'x', inviteCode: 'A'.repeat(20_000) } });
  expect(codeOf(r)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inviteCode', maxLength: DEFAULT_INPUT_BOUNDS.string });
  expect(r.errors?.[0]?.message).toBe(`inviteCode must be at most ${DEFAULT_INPUT_BOUNDS.string} characters`);
  expect(calls).toHaveLength(0);
});

test('literals are bounded as variables are; a value at the bound passes', async () => {
  const { run, calls } = setup();
  const at = 'k'.repeat(DEFAULT_INPUT_BOUNDS.string);
  expect((await run(`{ search(keyword: "${at}") }`)).errors).toBeUndefined();
  expect(codeOf(await run(`{ search(keyword: "${at}k") }`))).toMatchObject({ code: 'BAD_USER_INPUT', field: 'keyword' });
  expect(calls).toHaveLength(1);
});

test('ids, list lengths and nested input fields have their own bounds and paths', async () => {
  const { run } = setup();
  const ids = Array.from({ length: DEFAULT_INPUT_BOUNDS.items + 1 }, (_, i) => String(i));
  expect(codeOf(await run('query($ids: [ID!]) { search(ids: $ids) }', { ids }))).toMatchObject({
    field: 'ids',
    maxItems: DEFAULT_INPUT_BOUNDS.items,
  });
  const longId = 'i'.repeat(DEFAULT_INPUT_BOUNDS.id + 1);
  const r = await run('mutation($i: RegisterInput!) { register(input: $i) }', {
    i: {
      name: 'x',
      lines: [{ skuId: 'ok', quantity: 1 }],
      nested: {
        name: 'y',
        lines: [
          { skuId: 'a', quantity: 1 },
          { skuId: longId, quantity: 1 },
        ],
      },
    },
  });
  expect(codeOf(r)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'nested.lines[1].skuId', maxLength: DEFAULT_INPUT_BOUNDS.id });
});

test('a service raises or lowers a bound per field; fields without resolvers of their own are bounded too', async () => {
  const { run } = setup({ 'RegisterInput.bio': { maxLength: 5_000 }, 'RegisterInput.inviteCode': { maxLength: 16 } });
  expect((await run('mutation { register(input: { name: "x", bio: "' + 'b'.repeat(4_000) + '" }) }')).errors).toBeUndefined();
  expect(codeOf(await run('mutation { register(input: { name: "x", inviteCode: "ABCDEFGHIJKLMNOPQ" }) }'))).toMatchObject({
    field: 'inviteCode',
    maxLength: 16,
  });
  // `echo` has no resolver: the default one is wrapped.
  expect(codeOf(await run(`{ echo(text: "${'e'.repeat(201)}") }`))).toMatchObject({ field: 'text' });
});

test('a bound naming no argument or input field fails at start-up', () => {
  expect(() => setup({ 'RegisterInput.nickname': { maxLength: 10 } })).toThrow(/RegisterInput\.nickname/);
  expect(() => setup({ 'Query.search(keyword)': { maxLength: 10 } })).not.toThrow();
});
