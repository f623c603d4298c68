// The checkout's root: the nearest folder above this file that holds package.json, whether the
// service runs as TypeScript from src/ or compiled from dist/src/ (scripts/build.cjs).
import fs from "node:fs";
import path from "node:path";

function findProjectRoot(start: string): string {
  for (let directory = start; ; directory = path.dirname(directory)) {
    if (fs.existsSync(path.join(directory, "package.json"))) return directory;
    if (path.dirname(directory) === directory) throw new Error(`no package.json above ${start}`);
  }
}

export const projectRoot = findProjectRoot(__dirname);
