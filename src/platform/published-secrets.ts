// Production must not run with a secret anyone can read in this repository: the development
// defaults, the examples in the README, the values the tests use. The check reads the
// repository's own text files once at start (production only) and names each secret found.
import fs from "node:fs";
import path from "node:path";
import { projectRoot } from "./project-root";

const searchedEntries = ["src", "test", "scripts", "bench", "prisma", ".ci", "README.md", "ARCHITECTURE.md", "codegen.yml", "package.json"];
const skippedDirectories = new Set(["node_modules", "generated", ".data", ".git", "dist"]);
const textFile = /\.(ts|js|cjs|mjs|json|md|sql|prisma|graphql|yml|yaml|sh|txt)$|^run$/;
const fileSizeMaxBytes = 2_000_000;
const filesMax = 5000;

function* repositoryFiles(entry: string, budget: { files: number }): Generator<string> {
  if (!fs.existsSync(entry) || budget.files <= 0) return;
  const stat = fs.statSync(entry);
  if (stat.isFile()) {
    if (textFile.test(path.basename(entry)) && stat.size <= fileSizeMaxBytes) {
      budget.files -= 1;
      yield entry;
    }
    return;
  }
  for (const child of fs.readdirSync(entry)) {
    if (!skippedDirectories.has(child)) yield* repositoryFiles(path.join(entry, child), budget);
  }
}

/** The names of the given secrets whose values appear in a file of the repository. */
export function publishedSecretNames(secrets: Record<string, string | undefined>, root = projectRoot): string[] {
  const wanted = Object.entries(secrets).filter((entry): entry is [string, string] => typeof entry[1] === "string" && entry[1].length > 0);
  const found = new Set<string>();
  const budget = { files: filesMax };
  for (const entry of searchedEntries) {
    for (const file of repositoryFiles(path.join(root, entry), budget)) {
      const text = fs.readFileSync(file, "utf8");
      for (const [name, value] of wanted) if (text.includes(value)) found.add(name);
      if (found.size === wanted.length) return [...found].sort();
    }
  }
  return [...found].sort();
}
