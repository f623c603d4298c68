// Limits for a public GraphQL endpoint, each refused with HTTP 400 and BAD_USER_INPUT:
// tokens (graphql-js's own parser limit, so an over-long document is a parse error), depth,
// cost and directives (graphql-armor validation rules), aliases (our rule: graphql-armor's does
// not count `__typename`), control characters in string inputs; batched requests off; and
// introspection for staff only where configured so (403).
import type { ApolloServerPlugin } from "@apollo/server";
import type { Request, RequestHandler } from "express";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import { GraphQLError, Kind, visit, type ASTVisitor, type DocumentNode, type ValidationContext } from "graphql";
import type { Config } from "../config";
import type { Caller } from "./auth";
import { toGraphQLError, withHttpStatus } from "./errors";
import { textNestingDepth, valueNestingDepth } from "./nesting";

export function queryLimits(config: Config) {
  const limits = config.graphql;
  const armor = new ApolloArmor({
    maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, flattenFragments: true },
    costLimit: { maxCost: limits.maxCost, ignoreIntrospection: true },
    maxAliases: { enabled: false },
    maxDirectives: { n: limits.maxDirectives },
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: config.environment === "production" },
  });
  const protection = armor.protect();
  return {
    ...protection,
    validationRules: [...protection.validationRules, maxAliasesRule(limits.maxAliases)],
    parseOptions: { maxTokens: limits.maxTokens },
  };
}

/**
 * Before Apollo: refuses a document or variables nested past the limits with 400 and a message
 * that names the limit. graphql-js parses and coerces recursively, and a few thousand levels
 * overflow the stack ("Maximum call stack size exceeded"), which says nothing useful.
 */
export function nestingLimits(limits: Pick<Config["graphql"], "maxNesting" | "maxVariablesNesting">): RequestHandler {
  return (request, response, next) => {
    const problem = nestingProblem(request, limits);
    if (problem === undefined) return next();
    response.status(400).json({ errors: [{ message: problem, extensions: { code: "BAD_USER_INPUT" } }] });
  };
}

function nestingProblem(request: Request, limits: Pick<Config["graphql"], "maxNesting" | "maxVariablesNesting">): string | undefined {
  const source: unknown = request.method === "GET" ? request.query : request.body;
  if (source === null || typeof source !== "object" || Array.isArray(source)) return undefined;
  const { query, variables } = source as Record<string, unknown>;
  if (typeof query === "string" && textNestingDepth(query) > limits.maxNesting) {
    return `The document nests brackets, braces and parentheses more than ${limits.maxNesting} levels deep (QUERY_MAX_NESTING)`;
  }
  const variablesDepth = typeof variables === "string" ? textNestingDepth(variables) : valueNestingDepth(variables);
  if (variablesDepth > limits.maxVariablesNesting) {
    return `Variables nest objects and lists more than ${limits.maxVariablesNesting} levels deep (VARIABLES_MAX_NESTING)`;
  }
  return undefined;
}

/** Every alias in the document counts, `__typename` ones included. */
function maxAliasesRule(maxAliases: number) {
  return (context: ValidationContext): ASTVisitor => {
    let aliases = 0;
    return {
      Field(node) {
        if (!node.alias) return;
        aliases += 1;
        if (aliases === maxAliases + 1) {
          context.reportError(new GraphQLError(`Aliases limit of ${maxAliases} exceeded`, { nodes: [node] }));
        }
      },
    };
  };
}

// NUL and the other C0 controls but tab, line feed and carriage return, and DEL: PostgreSQL
// refuses NUL in text, and none of them belongs in an email, a name, a key or a note.
const controlCharacters = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

const variableDepthMax = 32;

/** Past variableDepthMax the answer is yes: what cannot be checked is refused. */
function containsControlCharacter(value: unknown, depth = 0): boolean {
  if (typeof value === "string") return controlCharacters.test(value);
  if (value === null || typeof value !== "object") return false;
  if (depth > variableDepthMax) return true;
  return Object.values(value).some((nested) => containsControlCharacter(nested, depth + 1));
}

/**
 * What a walk over a document found, once per document: Apollo keeps one parsed, validated
 * DocumentNode per operation text, so the plugins below walk each text once, not per request.
 */
function cachedPerDocument(walk: (document: DocumentNode) => boolean): (document: DocumentNode) => boolean {
  const found = new WeakMap<DocumentNode, boolean>();
  return (document) => {
    let answer = found.get(document);
    if (answer === undefined) {
      answer = walk(document);
      found.set(document, answer);
    }
    return answer;
  };
}

const documentContainsControlCharacter = cachedPerDocument((document) => {
  let found = false;
  visit(document, {
    [Kind.STRING](node) {
      if (controlCharacters.test(node.value)) found = true;
    },
  });
  return found;
});

/** Refuses control characters in variables and inline strings before anything runs. */
export const controlCharacterPolicy: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async didResolveOperation({ document, request }) {
        if (containsControlCharacter(request.variables) || documentContainsControlCharacter(document)) {
          throw withHttpStatus(toGraphQLError({ code: "BAD_USER_INPUT", message: "String inputs may not contain control characters" }), 400);
        }
      },
    };
  },
};

const isIntrospection = cachedPerDocument((document) => {
  let found = false;
  visit(document, {
    Field(node) {
      if (node.name.value === "__schema" || node.name.value === "__type") found = true;
    },
  });
  return found;
});

export function introspectionPolicy(config: Config): ApolloServerPlugin<{ caller: Caller }> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, contextValue }) {
          if (config.graphql.introspection === "everyone" || contextValue.caller.kind === "staff") return;
          if (isIntrospection(document)) {
            throw withHttpStatus(toGraphQLError({ code: "FORBIDDEN", message: "Introspection is available to staff tokens only" }), 403);
          }
        },
      };
    },
  };
}
