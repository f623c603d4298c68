// How tools start the service as a process: the way `npm start` does, compiled JavaScript under
// plain node (scripts/build.cjs), so that what tests and benches measure is what runs.
import { execFileSync } from "node:child_process";
import path from "node:path";

const root = path.resolve(__dirname, "..");

/** node's arguments for the server (after any options of the caller's own, e.g. profiling). */
export function serverArguments(nodeOptions: string[] = []): string[] {
  return [...nodeOptions, "--enable-source-maps", path.join(root, "dist", "src", "main.js")];
}

/** Compiles src/ into dist/ (a fraction of a second); run once before starting servers. */
export function buildServer(): void {
  execFileSync(process.execPath, [path.join(root, "scripts", "build.cjs")], { cwd: root, stdio: "inherit" });
}
