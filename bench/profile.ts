// npm run bench:profile -- <dir> [from-to]: sums the self time of the largest V8 CPU profile in <dir> (the
// main thread's; tsx's loader thread writes a small one too) by
// layer (the npm package, or the service's own code by folder), largest first. Where a
// function was running when sampled is its self time; idle and GC are listed apart.
import fs from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function layerOf(url: string, functionName: string): string {
  if (functionName === "(idle)" || functionName === "(program)" || functionName === "(garbage collector)") return functionName;
  if (url === "") return "(native)";
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1]!;
  if (url.startsWith("node:")) return "node: core";
  const own = /\/src\/(generated\/[^/]+|modules\/[^/]+|platform\/[^/]+|[^/]+)/.exec(url);
  if (own) return `src/${own[1]!.replace(/\.(ts|js)$/, "")}`;
  return url;
}

/** Layers that only run on behalf of a caller: their time is charged to the nearest caller outside them. */
const servantLayers = new Set(["(native)", "node: core", "(program)"]);

/**
 * Each node's layer with native code and Node's core charged to the package or folder that
 * called them: `writev` under pg counts as pg, a JSON.parse under Prisma as Prisma.
 */
function callerLayers(profile: CpuProfile, layerById: Map<number, string>): Map<number, string> {
  const parentById = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentById.set(child, node.id);
  const charged = new Map<number, string>();
  const resolve = (id: number): string => {
    const known = charged.get(id);
    if (known) return known;
    const own = layerById.get(id) ?? "(unknown)";
    const parent = parentById.get(id);
    const layer = servantLayers.has(own) && parent !== undefined ? resolve(parent) : own;
    charged.set(id, layer);
    return layer;
  };
  for (const node of profile.nodes) resolve(node.id);
  return charged;
}

function printTable(title: string, microsByLayer: Map<string, number>, busyMicros: number): void {
  console.log(`\n${title}\n`);
  console.log("| layer | self s | % of busy |");
  console.log("| --- | --- | --- |");
  for (const [layer, micros] of [...microsByLayer.entries()].sort((a, b) => b[1] - a[1])) {
    if (layer === "(idle)") continue;
    const share = (100 * micros) / busyMicros;
    if (share < 0.5) continue;
    console.log(`| ${layer} | ${(micros / 1e6).toFixed(2)} | ${share.toFixed(1)} |`);
  }
}

/** Seconds since the profile began, [from, to): the profile covers the server's whole life. */
interface Window {
  fromSeconds: number;
  toSeconds: number;
}

function sumByLayer(profile: CpuProfile, layerById: Map<number, string>, window: Window): Map<string, number> {
  const microsByLayer = new Map<string, number>();
  let elapsedMicros = 0;
  profile.samples.forEach((nodeId, index) => {
    const deltaMicros = profile.timeDeltas[index] ?? 0;
    elapsedMicros += deltaMicros;
    const seconds = elapsedMicros / 1e6;
    if (seconds < window.fromSeconds || seconds >= window.toSeconds) return;
    const layer = layerById.get(nodeId) ?? "(unknown)";
    microsByLayer.set(layer, (microsByLayer.get(layer) ?? 0) + deltaMicros);
  });
  return microsByLayer;
}

/** Busy share per second, to find the seconds of one scenario (setup creates 1,000 customers first). */
function printTimeline(profile: CpuProfile, layerById: Map<number, string>): void {
  const busyBySecond: number[] = [];
  let elapsedMicros = 0;
  profile.samples.forEach((nodeId, index) => {
    const deltaMicros = profile.timeDeltas[index] ?? 0;
    elapsedMicros += deltaMicros;
    const second = Math.floor(elapsedMicros / 1e6);
    if (layerById.get(nodeId) !== "(idle)") busyBySecond[second] = (busyBySecond[second] ?? 0) + deltaMicros;
  });
  console.log(`busy % by second: ${Array.from(busyBySecond, (micros, second) => `${second}:${Math.round((micros ?? 0) / 1e4)}`).join(" ")}`);
}

function parseWindow(argument: string | undefined): Window {
  if (!argument) return { fromSeconds: 0, toSeconds: Infinity };
  const match = /^(\d+)-(\d+)$/.exec(argument);
  if (!match) throw new Error(`window ${argument}: expected <from>-<to> in seconds since the profile began`);
  return { fromSeconds: Number(match[1]), toSeconds: Number(match[2]) };
}

function main(): void {
  const directory = process.argv[2];
  if (!directory) throw new Error("usage: npm run bench:profile -- <directory with .cpuprofile files> [<from>-<to> seconds]");
  const largest = fs
    .readdirSync(directory)
    .filter((name) => name.endsWith(".cpuprofile"))
    .map((name) => path.join(directory, name))
    .sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
  if (!largest) throw new Error(`no .cpuprofile in ${directory}`);
  const profile = JSON.parse(fs.readFileSync(largest, "utf8")) as CpuProfile;
  const layerById = new Map(profile.nodes.map((node) => [node.id, layerOf(node.callFrame.url, node.callFrame.functionName)]));
  const window = parseWindow(process.argv[3]);
  printTimeline(profile, layerById);
  const microsByLayer = sumByLayer(profile, layerById, window);
  const totalMicros = [...microsByLayer.values()].reduce((sum, micros) => sum + micros, 0);
  const busyMicros = totalMicros - (microsByLayer.get("(idle)") ?? 0);
  console.log(`${path.basename(largest)}, seconds ${window.fromSeconds} to ${window.toSeconds}: ${(totalMicros / 1e6).toFixed(1)} s sampled, ${(busyMicros / 1e6).toFixed(1)} s busy (${((100 * busyMicros) / totalMicros).toFixed(0)}%)`);
  printTable("Self time by layer:", microsByLayer, busyMicros);
  printTable("Native code and Node's core charged to the layer that called them:", sumByLayer(profile, callerLayers(profile, layerById), window), busyMicros);
}

main();
