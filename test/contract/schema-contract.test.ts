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

// schema.graphql (version 2) is served whole and checked always. schema.next.graphql is version
// 2 plus the parts marked v3: until every v3 part is served, the only differences it may show
// are v3 parts not served yet; then it is checked whole like version 2.
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

/** What the served schema changes of a contract: everything that is not an addition, and breaking additions. */
async function departuresFrom(sdl: string): Promise<{ notAdditions: string[]; breakingAdditions: string[] }> {
  const contract = buildSchemaFromSdl(sdl);
  const served = buildSchemaFromSdl(printSchema(buildSchema()));
  const changes = await diff(contract, served);
  return {
    notAdditions: changes.filter((change) => !isAddition(change)).map((change) => `${change.type}: ${change.message}`),
    breakingAdditions: changes.filter((change) => isAddition(change) && change.criticality.level === CriticalityLevel.Breaking).map((change) => change.message),
  };
}

it("serves every type, field, argument and description of contract v2 (schema.graphql) unchanged", async () => {
  expect(await departuresFrom(contractSdl())).toEqual({ notAdditions: [], breakingAdditions: [] });
});

/** The coordinates (Type.field, Type.field.argument, Input.field) the next contract marks v3. */
function v3Coordinates(sdl: string): Set<string> {
  const schema = buildSchemaFromSdl(sdl);
  const marked = new Set<string>();
  const isV3 = (description: string | null | undefined) => description?.startsWith("v3") === true;
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith("__")) continue;
    if (isV3(type.description)) marked.add(type.name);
    if (!("getFields" in type)) continue;
    for (const field of Object.values(type.getFields())) {
      if (isV3(field.description)) marked.add(`${type.name}.${field.name}`);
      for (const argument of "args" in field ? field.args : []) if (isV3(argument.description)) marked.add(`${type.name}.${field.name}.${argument.name}`);
    }
  }
  return marked;
}

it("serves contract v3 (schema.next.graphql) except v3 parts not built yet, and whole once they are", async () => {
  const sdl = nextContractSdl();
  const pending = v3Coordinates(sdl);
  expect(pending.size).toBeGreaterThan(0);
  const contract = buildSchemaFromSdl(sdl);
  const served = buildSchemaFromSdl(printSchema(buildSchema()));
  const changes = await diff(contract, served);
  const unbuilt = changes.filter((change) => !isAddition(change) && change.path !== undefined && pending.has(change.path));
  const departures = changes.filter((change) => !isAddition(change) && !unbuilt.includes(change));
  expect(departures.map((change) => `${change.type}: ${change.message}`)).toEqual([]);
});
