// The served schema must contain the client contract unchanged; it may only add.
import fs from "node:fs";
import path from "node:path";
import { CriticalityLevel, diff } from "@graphql-inspector/core";
import { buildSchema as buildSchemaFromSdl, printSchema } from "graphql";
import { buildSchema } from "../../src/schema";

const sharedContractPath = path.resolve(__dirname, "..", "..", "..", "shared", "contract", "schema.graphql");
const committedContractPath = path.join(__dirname, "contract.graphql");
const sharedNextContractPath = path.resolve(__dirname, "..", "..", "..", "shared", "contract", "schema.next.graphql");
const committedNextContractPath = path.join(__dirname, "contract.next.graphql");

// Every v2 part of schema.next.graphql is served (issues 11, 13 and 14 built them), so the next
// contract is the one checked: v1 plus the v2 parts, unchanged. v1 is still checked on its own,
// which costs nothing and says which contract a failure breaks.
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

/** An addition, or a description where the contract has none (inspector calls that a change). */
function isAddition(change: { type: string; meta?: unknown }): boolean {
  if (additions.has(change.type)) return true;
  if (!change.type.endsWith("_DESCRIPTION_CHANGED")) return false;
  const meta = (change.meta ?? {}) as Record<string, unknown>;
  const oldDescriptions = Object.entries(meta).filter(([key]) => key.startsWith("old") && key.endsWith("Description"));
  return oldDescriptions.length === 1 && !oldDescriptions[0]![1];
}

const contractSdl = () =>
  fs.existsSync(sharedContractPath) ? fs.readFileSync(sharedContractPath, "utf8") : fs.readFileSync(committedContractPath, "utf8");
const nextContractSdl = () =>
  fs.existsSync(sharedNextContractPath) ? fs.readFileSync(sharedNextContractPath, "utf8") : fs.readFileSync(committedNextContractPath, "utf8");

it.each([
  [sharedContractPath, committedContractPath],
  [sharedNextContractPath, committedNextContractPath],
])("keeps its committed copy of %s identical to the shared one", (shared, committed) => {
  if (!fs.existsSync(shared)) {
    // A clone without the shared folder checks against the committed copy alone.
    expect(fs.existsSync(committed)).toBe(true);
    return;
  }
  expect(fs.readFileSync(committed, "utf8")).toBe(fs.readFileSync(shared, "utf8"));
});

it("detects a changed contract (the check itself can fail)", async () => {
  const contract = buildSchemaFromSdl(contractSdl());
  const altered = buildSchemaFromSdl(contractSdl().replace("secondsRemaining: NonNegativeInt!", "secondsRemaining: Int"));
  const changes = await diff(contract, altered);
  expect(changes.some((change) => !isAddition(change))).toBe(true);
  const reworded = buildSchemaFromSdl(contractSdl().replace('"Seconds that can be reserved now."', '"Seconds left."'));
  expect((await diff(contract, reworded)).some((change) => !isAddition(change))).toBe(true);
});

it.each([
  ["v1 (schema.graphql)", contractSdl],
  ["v2 (schema.next.graphql)", nextContractSdl],
])("serves every type, field, argument and description of contract %s unchanged", async (_name, sdl) => {
  const contract = buildSchemaFromSdl(sdl());
  const served = buildSchemaFromSdl(printSchema(buildSchema()));
  const changes = await diff(contract, served);
  const notAdditions = changes.filter((change) => !isAddition(change));
  expect(notAdditions.map((change) => `${change.type}: ${change.message}`)).toEqual([]);
  const breakingAdditions = changes.filter((change) => change.criticality.level === CriticalityLevel.Breaking);
  expect(breakingAdditions.map((change) => change.message)).toEqual([]);
});
