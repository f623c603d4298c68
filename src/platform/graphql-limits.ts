// Limits for a public GraphQL endpoint: depth, cost, aliases, directives and tokens per
// operation (graphql-armor; refusals are validation errors, answered as BAD_USER_INPUT),
// batched requests off, and introspection for staff only where configured so.
import type { ApolloServerPlugin } from "@apollo/server";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import { visit, type DocumentNode } from "graphql";
import type { Config } from "../config";
import type { RequestContext } from "../context";
import { toGraphQLError } from "./errors";

export function queryLimits(config: Config) {
  const limits = config.graphql;
  const armor = new ApolloArmor({
    maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    costLimit: { maxCost: limits.maxCost, ignoreIntrospection: true },
    maxAliases: { n: limits.maxAliases },
    maxDirectives: { n: limits.maxDirectives },
    maxTokens: { n: limits.maxTokens },
    blockFieldSuggestion: { enabled: config.environment === "production" },
  });
  return armor.protect();
}

function isIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (node.name.value === "__schema" || node.name.value === "__type") found = true;
    },
  });
  return found;
}

export function introspectionPolicy(config: Config): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, contextValue }) {
          if (config.graphql.introspection === "everyone" || contextValue.caller.kind === "staff") return;
          if (isIntrospection(document)) {
            throw toGraphQLError({ code: "FORBIDDEN", message: "Introspection is available to staff tokens only" });
          }
        },
      };
    },
  };
}
