// The served schema must contain the client contract unchanged; it may only add.
import fs from "node:fs";
import path from "node:path";
import { CriticalityLevel, diff } from "@graphql-inspector/core";
import { buildSchema as buildSchemaFromSdl, printSchema } from "graphql";
import { buildSchema } from "../../src/schema";

const sharedContractPath = path.resolve(__dirname, "..", "..", "..", "shared", "contract", "schema.graphql");
const committedContractPath = path.join(__dirname, "contract.graphql");

// Changes that only add to the contract; anything else alters what clients were built against.
const additions = new Set([
  "FIELD_ADDED",
  "TYPE_ADDED",
  "ENUM_VALUE_ADDED",
  "FIELD_ARGUMENT_ADDED",
  "INPUT_FIELD_ADDED",
  "OBJECT_TYPE_INTERFACE_ADDED",
  "UNION_MEMBER_ADDED",
  "DIRECTIVE_ADDED",
  "TYPE_DESCRIPTION_ADDED",
  "FIELD_DESCRIPTION_ADDED",
  "FIELD_ARGUMENT_DESCRIPTION_ADDED",
  "INPUT_FIELD_DESCRIPTION_ADDED",
  "ENUM_VALUE_DESCRIPTION_ADDED",
]);

const contractSdl = () =>
  fs.existsSync(sharedContractPath) ? fs.readFileSync(sharedContractPath, "utf8") : fs.readFileSync(committedContractPath, "utf8");

it("keeps its committed copy of the contract identical to the shared one", () => {
  if (!fs.existsSync(sharedContractPath)) {
    // A clone without the shared folder checks against the committed copy alone (next test).
    expect(fs.existsSync(committedContractPath)).toBe(true);
    return;
  }
  expect(fs.readFileSync(committedContractPath, "utf8")).toBe(fs.readFileSync(sharedContractPath, "utf8"));
});

it("serves every type, field, argument and description of the contract unchanged", async () => {
  const contract = buildSchemaFromSdl(contractSdl());
  const served = buildSchemaFromSdl(printSchema(buildSchema()));
  const changes = await diff(contract, served);
  const notAdditions = changes.filter((change) => !additions.has(change.type));
  expect(notAdditions.map((change) => `${change.type}: ${change.message}`)).toEqual([]);
  const breakingAdditions = changes.filter((change) => change.criticality.level === CriticalityLevel.Breaking);
  expect(breakingAdditions.map((change) => change.message)).toEqual([]);
});

it("detects a changed contract (the check itself can fail)", async () => {
  const contract = buildSchemaFromSdl(contractSdl());
  const altered = buildSchemaFromSdl(contractSdl().replace("secondsRemaining: NonNegativeInt!", "secondsRemaining: Int"));
  const changes = await diff(contract, altered);
  expect(changes.some((change) => !additions.has(change.type))).toBe(true);
});
