import {
  GraphQLError,
  getNamedType,
  isListType,
  isNonNullType,
  Kind,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLOutputType,
  type GraphQLType,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  isCompositeType,
  type GraphQLCompositeType,
  isObjectType,
  isInterfaceType,
} from 'graphql';

const err = (message: string) => new GraphQLError(message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });

const unwrapNonNull = (t: GraphQLType): GraphQLType => (isNonNullType(t) ? t.ofType : t);
const isList = (t: GraphQLOutputType) => isListType(unwrapNonNull(t));

/** Static analysis of one operation: nesting depth and an estimated cost before any resolver runs. */
function analyse(
  ctx: ValidationContext,
  selectionSet: SelectionSetNode,
  parent: GraphQLCompositeType | null,
  depth: number,
  seen: Set<string>,
) {
  let maxDepth = depth;
  let cost = 0;
  const fragments = new Map<string, FragmentDefinitionNode>(
    ctx
      .getDocument()
      .definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const visit = (set: SelectionSetNode, type: GraphQLCompositeType | null) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const r = fieldCost(ctx, sel, type, depth, seen);
        maxDepth = Math.max(maxDepth, r.depth);
        cost += r.cost;
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const cond = sel.typeCondition ? ctx.getSchema().getType(sel.typeCondition.name.value) : type;
        visit(sel.selectionSet, cond && isCompositeType(cond) ? cond : type);
      } else {
        const frag = fragments.get(sel.name.value);
        if (!frag || seen.has(frag.name.value)) continue; // cycles are reported by NoFragmentCycles
        const cond = ctx.getSchema().getType(frag.typeCondition.name.value);
        visit(frag.selectionSet, cond && isCompositeType(cond) ? cond : type);
      }
    }
  };
  visit(selectionSet, parent);
  return { depth: maxDepth, cost };
}

function fieldCost(ctx: ValidationContext, field: FieldNode, parent: GraphQLCompositeType | null, depth: number, seen: Set<string>) {
  if (field.name.value.startsWith('__')) return { depth, cost: 0 };
  const def = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[field.name.value] : undefined;
  if (!field.selectionSet) return { depth: depth + 1, cost: 1 };
  const named = def ? getNamedType(def.type) : null;
  const child = analyse(ctx, field.selectionSet, named && isCompositeType(named) ? named : null, depth + 1, seen);
  // A page size multiplies what is under it; lists without one are assumed to hold 10.
  const first = field.arguments?.find((a) => a.name.value === 'first' || a.name.value === 'last');
  let multiplier = 1;
  if (first) multiplier = first.value.kind === Kind.INT ? Math.max(1, Number(first.value.value)) : 20;
  else if (def && isList(def.type) && field.name.value !== 'edges') multiplier = 10;
  return { depth: child.depth, cost: 1 + multiplier * child.cost };
}

export function queryLimits(maxDepth: number, maxCost: number): ValidationRule {
  return (ctx) => ({
    OperationDefinition(op) {
      const root =
        op.operation === 'query'
          ? ctx.getSchema().getQueryType()
          : op.operation === 'mutation'
            ? ctx.getSchema().getMutationType()
            : ctx.getSchema().getSubscriptionType();
      const { depth, cost } = analyse(ctx, op.selectionSet, root ?? null, 0, new Set());
      if (depth > maxDepth) ctx.reportError(err(`Query is nested ${depth} levels deep; the limit is ${maxDepth}`));
      if (cost > maxCost) ctx.reportError(err(`Query cost ${cost} exceeds the limit of ${maxCost}; ask for smaller pages`));
    },
  });
}
