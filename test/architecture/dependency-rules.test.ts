// The dependency rules (.dependency-cruiser.cjs) hold for the service, and each of them fails
// on a fixture built to break it, so a rule that silently matches nothing is caught.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const root = path.resolve(__dirname, "..", "..");
const configPath = path.join(root, ".dependency-cruiser.cjs");
const cruiser = path.join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");
const ruleNames: string[] = (require(configPath) as { forbidden: { name: string }[] }).forbidden.map((rule) => rule.name);

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

async function violationsIn(directory: string): Promise<Violation[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [cruiser, "src", "--config", configPath, "--output-type", "json"], {
    cwd: directory,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
  return (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

it("finds no violation in the service", async () => {
  expect((await violationsIn(root)).map((violation) => `${violation.rule.name}: ${violation.from} -> ${violation.to}`)).toEqual([]);
});

it("fails each rule on the fixture that breaks it", async () => {
  const violations = await violationsIn(path.join(__dirname, "fixture"));
  const broken = violations.map((violation) => `${violation.rule.name}: ${violation.from}`);
  expect(new Set(violations.map((violation) => violation.rule.name))).toEqual(new Set(ruleNames));
  expect(broken).toEqual(
    expect.arrayContaining([
      "config-is-the-bottom: src/config.ts",
      "platform-knows-no-feature: src/platform/leaky.ts",
      "modules-only-through-their-door: src/modules/alpha/alpha.service.ts",
      "prisma-only-in-stores: src/modules/alpha/alpha.service.ts",
      "resolvers-call-services: src/modules/beta/beta.resolvers.ts",
      "outside-only-through-module-doors: src/services.ts",
      "no-runtime-cycles: src/modules/alpha/alpha.service.ts",
    ]),
  );
});
