// The served schema: every module's SDL and resolvers merged, with the contract's scalars.
import fs from "node:fs";
import path from "node:path";
import { mergeResolvers } from "@graphql-tools/merge";
import { makeExecutableSchema } from "@graphql-tools/schema";
import type { GraphQLSchema } from "graphql";
import type { Resolvers } from "./generated/graphql";
import { billingResolvers, billingTypeDefs } from "./modules/billing";
import { creditsResolvers, creditsTypeDefs } from "./modules/credits";
import { customersResolvers, customersTypeDefs } from "./modules/customers";
import { licensesResolvers, licensesTypeDefs } from "./modules/licenses";
import { scalarResolvers } from "./platform/scalars";

// Shared pieces every module extends: scalars, PageInfo, the root types.
const commonTypeDefs = fs.readFileSync(path.join(__dirname, "modules", "common", "schema.graphql"), "utf8");

export function loadTypeDefs(): string[] {
  return [commonTypeDefs, customersTypeDefs, creditsTypeDefs, licensesTypeDefs, billingTypeDefs];
}

export function buildSchema(): GraphQLSchema {
  const resolvers = mergeResolvers([scalarResolvers, customersResolvers, creditsResolvers, licensesResolvers, billingResolvers]) as Resolvers;
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
}
