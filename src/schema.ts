// The served schema: every module's SDL and resolvers merged, with the contract's scalars.
import fs from "node:fs";
import path from "node:path";
import { mergeResolvers } from "@graphql-tools/merge";
import { makeExecutableSchema } from "@graphql-tools/schema";
import type { GraphQLSchema } from "graphql";
import type { Resolvers } from "./generated/graphql";
import { billingResolvers } from "./modules/billing/billing.resolvers";
import { creditsResolvers } from "./modules/credits/credits.resolvers";
import { customersResolvers } from "./modules/customers/customers.resolvers";
import { licensesResolvers } from "./modules/licenses/licenses.resolvers";
import { scalarResolvers } from "./platform/scalars";

const modulesDirectory = path.join(__dirname, "modules");
const moduleNames = ["common", "customers", "credits", "licenses", "billing"] as const;

export function loadTypeDefs(): string[] {
  return moduleNames.map((name) => fs.readFileSync(path.join(modulesDirectory, name, "schema.graphql"), "utf8"));
}

export function buildSchema(): GraphQLSchema {
  const resolvers = mergeResolvers([scalarResolvers, customersResolvers, creditsResolvers, licensesResolvers, billingResolvers]) as Resolvers;
  return makeExecutableSchema({ typeDefs: loadTypeDefs(), resolvers });
}
