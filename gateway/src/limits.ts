import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  getNamedType,
  GraphQLError,
  isCompositeType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type FieldNode,
  type GraphQLCompositeType,
  type GraphQLOutputType,
  type ParseOptions,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Config } from './config';

export type DocumentLimits = Pick<Config, 'MAX_QUERY_DEPTH' | 'MAX_QUERY_COST' | 'MAX_ALIASES' | 'MAX_DIRECTIVES' | 'MAX_QUERY_TOKENS'>;

const validationError = (message: string) => new GraphQLError(message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });

// graphql-armor throws by default, which Apollo answers with a 500; reported to the context
// instead, each limit is one more validation error in the 400 answer. Its messages start with
// "Syntax Error: " although nothing is wrong with the syntax.
const reportToContext = {
  propagateOnRejection: false,
  onReject: [
    (ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(validationError(error.message.replace(/^Syntax Error: /, ''))),
  ],
};

/**
 * Everything a document is checked against before it is planned or any subgraph is called, from
 * the one config: tokens while parsing (graphql-js stops counting at the limit), then depth,
 * aliases and directives (graphql-armor) and cost (ours) as validation rules. Each rule walks a
 * named fragment once however often it is spread, and stops at a fragment cycle, which graphql's
 * own NoFragmentCyclesRule reports: the document is refused in time linear in its size.
 */
export function documentLimits(limits: DocumentLimits): { parseOptions: ParseOptions; validationRules: ValidationRule[] } {
  return {
    parseOptions: { maxTokens: limits.MAX_QUERY_TOKENS },
    validationRules: [
      // Flattened: a fragment is not a level of nesting; its fields are.
      maxDepthRule({ n: limits.MAX_QUERY_DEPTH, flattenFragments: true, ...reportToContext }),
      maxAliasesRule({ n: limits.MAX_ALIASES, ...reportToContext }),
      maxDirectivesRule({ n: limits.MAX_DIRECTIVES, ...reportToContext }),
      costLimit(limits.MAX_QUERY_COST),
    ],
  };
}

const isList = (t: GraphQLOutputType) => isListType(isNonNullType(t) ? t.ofType : t);

/**
 * Estimated fields resolved, before any resolver runs. Ours rather than graphql-armor's cost rule
 * because it knows the schema: a page size multiplies what is under it (`first: $n` counts as 20,
 * a list without one as 10), where armor only reads literal `first`/`last`.
 */
function costLimit(maxCost: number): ValidationRule {
  return (ctx) => {
    const schema = ctx.getSchema();
    const composite = (name: string): GraphQLCompositeType | null => {
      const t = schema.getType(name);
      return t && isCompositeType(t) ? t : null;
    };
    // A fragment's cost depends only on its own type condition, so it is computed once.
    const fragmentCosts = new Map<string, number>();
    const walking = new Set<string>();

    const fragmentCost = (name: string): number => {
      const known = fragmentCosts.get(name);
      if (known !== undefined) return known;
      const fragment = ctx.getFragment(name);
      // Unknown fragments and cycles are reported by graphql's own rules; here they add nothing.
      if (!fragment || walking.has(name)) return 0;
      walking.add(name);
      const cost = selectionCost(fragment.selectionSet, composite(fragment.typeCondition.name.value));
      walking.delete(name);
      fragmentCosts.set(name, cost);
      return cost;
    };

    const selectionCost = (set: SelectionSetNode, parent: GraphQLCompositeType | null): number => {
      let cost = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) cost += fieldCost(sel, parent);
        else if (sel.kind === Kind.INLINE_FRAGMENT)
          cost += selectionCost(sel.selectionSet, sel.typeCondition ? (composite(sel.typeCondition.name.value) ?? parent) : parent);
        // A spread costs one itself, so fragments of nothing but __typename still add up.
        else cost += 1 + fragmentCost(sel.name.value);
      }
      return cost;
    };

    const fieldCost = (field: FieldNode, parent: GraphQLCompositeType | null): number => {
      if (field.name.value.startsWith('__')) return 0;
      if (!field.selectionSet) return 1;
      const def = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[field.name.value] : undefined;
      const named = def ? getNamedType(def.type) : null;
      const child = selectionCost(field.selectionSet, named && isCompositeType(named) ? named : null);
      const page = field.arguments?.find((a) => a.name.value === 'first' || a.name.value === 'last');
      let multiplier = 1;
      if (page) multiplier = page.value.kind === Kind.INT ? Math.max(1, Number(page.value.value)) : 20;
      else if (def && isList(def.type) && field.name.value !== 'edges') multiplier = 10;
      return 1 + multiplier * child;
    };

    return {
      OperationDefinition(op) {
        const root =
          op.operation === 'query'
            ? schema.getQueryType()
            : op.operation === 'mutation'
              ? schema.getMutationType()
              : schema.getSubscriptionType();
        const cost = selectionCost(op.selectionSet, root ?? null);
        if (cost > maxCost) ctx.reportError(validationError(`Query cost ${cost} exceeds the limit of ${maxCost}; ask for smaller pages`));
      },
    };
  };
}
