import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

/** ISO-8601 UTC timestamps. */
export const DateTime: GraphQLScalarType<Date, string> = new GraphQLScalarType({
  name: 'DateTime',
  serialize(v) {
    const d = v instanceof Date ? v : new Date(v as string);
    if (Number.isNaN(d.getTime())) throw new GraphQLError('DateTime cannot represent an invalid date');
    return d.toISOString();
  },
  parseValue(v) {
    if (typeof v !== 'string') throw new GraphQLError('DateTime must be an ISO-8601 string');
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return d;
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return DateTime.parseValue(ast.value);
  },
});

/** Integers up to 2^53 − 1 (money totals in fen; GraphQL Int is 32-bit). */
export const Long: GraphQLScalarType<number, number> = new GraphQLScalarType({
  name: 'Long',
  serialize(v) {
    const n = typeof v === 'bigint' ? Number(v) : (v as number);
    if (!Number.isSafeInteger(n)) throw new GraphQLError('Long must be a safe integer');
    return n;
  },
  parseValue(v) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new GraphQLError('Long must be a safe integer');
    return v;
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.INT) throw new GraphQLError('Long must be an integer');
    return Long.parseValue(Number(ast.value));
  },
});

export const scalarResolvers = { DateTime, Long };
