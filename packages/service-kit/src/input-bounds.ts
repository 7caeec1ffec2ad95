import {
  defaultFieldResolver,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLInputField,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { AppError } from './errors';

/**
 * Every string, id and list a client sends is bounded before any resolver runs: a value that is
 * stored, put in an event or logged can never be arbitrarily large. The defaults hold for every
 * argument and input field of every subgraph; a service raises or lowers them per field
 * (`InputType.field` or `Type.field(arg)`), and a key that names nothing fails at start-up.
 */
export interface InputBound {
  /** Characters (UTF-16 code units, as GraphQL strings are measured) of a String or ID. */
  maxLength?: number;
  /** Items of a list. */
  maxItems?: number;
}
export type InputBounds = Record<string, InputBound>;

export const DEFAULT_INPUT_BOUNDS = {
  /** Names, titles, reasons, keys, cursors: anything longer is a prose field that says so. */
  string: 200,
  /** Ids are opaque but short (ObjectIds, `provider:txn` pairs). */
  id: 100,
  /** Lines of an order, tags, images …; a longer list is a batch API that says so. */
  items: 100,
} as const;

// Federation's own entry points: `_entities` carries the gateway's batched representations (the
// gateway's query limits bound them), `_service` takes no input.
const EXEMPT_ROOT_FIELDS = new Set(['_entities', '_service']);

type Check = (value: unknown, path: string) => void;

const tooLong = (path: string, max: number) =>
  new AppError('BAD_USER_INPUT', `${path} must be at most ${max} characters`, { field: path, maxLength: max });
const tooMany = (path: string, max: number) =>
  new AppError('BAD_USER_INPUT', `${path} must have at most ${max} items`, { field: path, maxItems: max });

/**
 * Wraps the resolver of every field that takes arguments in a check of those arguments' sizes
 * (after coercion, so variables and literals alike), throwing BAD_USER_INPUT that names the
 * field path before the resolver — and so before any write — runs. Mutates `schema` in place.
 */
export function boundInputs(schema: GraphQLSchema, overrides: InputBounds = {}): GraphQLSchema {
  const used = new Set<string>();
  const boundOf = (key: string): InputBound | undefined => {
    const b = overrides[key];
    if (b) used.add(key);
    return b;
  };
  const cache = new Map<string, Check | null>();

  /** A check for a value of `type` at a position with `bound`, or null when nothing there can be large. */
  function checkFor(type: GraphQLInputType, bound: InputBound | undefined, seen: Set<string>): Check | null {
    if (isNonNullType(type)) return checkFor(type.ofType, bound, seen);
    if (isListType(type)) {
      const maxItems = bound?.maxItems ?? DEFAULT_INPUT_BOUNDS.items;
      const item = checkFor(type.ofType, bound, seen);
      return (value, path) => {
        if (!Array.isArray(value)) return item?.(value, path);
        if (value.length > maxItems) throw tooMany(path, maxItems);
        if (item) value.forEach((v, i) => item(v, `${path}[${i}]`));
      };
    }
    if (isScalarType(type)) {
      if (type.name !== 'String' && type.name !== 'ID') return null;
      const max = bound?.maxLength ?? (type.name === 'ID' ? DEFAULT_INPUT_BOUNDS.id : DEFAULT_INPUT_BOUNDS.string);
      return (value, path) => {
        if (typeof value === 'string' && value.length > max) throw tooLong(path, max);
      };
    }
    if (isInputObjectType(type)) {
      if (cache.has(type.name)) return cache.get(type.name) ?? null;
      if (seen.has(type.name)) return (value, path) => cache.get(type.name)?.(value, path); // recursive input types
      seen.add(type.name);
      const fields = Object.values(type.getFields())
        .map((f: GraphQLInputField) => ({ name: f.name, check: checkFor(f.type, boundOf(`${type.name}.${f.name}`), seen) }))
        .filter((f): f is { name: string; check: Check } => f.check !== null);
      const check: Check | null = fields.length
        ? (value, path) => {
            if (!value || typeof value !== 'object') return;
            const obj = value as Record<string, unknown>;
            for (const f of fields) if (obj[f.name] != null) f.check(obj[f.name], path ? `${path}.${f.name}` : f.name);
          }
        : null;
      cache.set(type.name, check);
      return check;
    }
    return null; // enums, Int, Float, Boolean, DateTime …: fixed size once coerced
  }

  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    const isRoot = type === schema.getQueryType() || type === schema.getMutationType();
    for (const field of Object.values(type.getFields())) {
      if (!field.args.length || (isRoot && EXEMPT_ROOT_FIELDS.has(field.name))) continue;
      const checks = field.args
        .map((a: GraphQLArgument) => ({
          name: a.name,
          check: checkFor(a.type, boundOf(`${type.name}.${field.name}(${a.name})`), new Set()),
        }))
        .filter((a): a is { name: string; check: Check } => a.check !== null);
      if (!checks.length) continue;
      const resolve = field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args: Record<string, unknown>, ctx, info) => {
        // The conventional single `input` argument is left out of the path: `nickname`, not `input.nickname`.
        for (const a of checks) if (args[a.name] != null) a.check(args[a.name], a.name === 'input' ? '' : a.name);
        return resolve(source, args, ctx, info);
      };
    }
  }
  // Named input types only reachable through fields visited above; a key that was never looked
  // up names no argument or input field of this schema.
  const unknown = Object.keys(overrides).filter((k) => !used.has(k));
  if (unknown.length) throw new Error(`input bounds name no argument or input field of this schema: ${unknown.join(', ')}`);
  return schema;
}
