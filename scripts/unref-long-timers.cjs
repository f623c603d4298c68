// Preloaded (node -r) into Prisma CLI runs: the WASM engine leaves a 10 s timer behind after it
// finishes, which would keep every `prisma migrate ...` alive for 10 s. Long timers never carry
// work the CLI still needs, so they must not hold the process open.
const longTimerMs = 10_000;
const originalSetTimeout = global.setTimeout;
global.setTimeout = function setTimeoutUnrefLong(callback, delayMs, ...args) {
  const timer = originalSetTimeout(callback, delayMs, ...args);
  if (typeof delayMs === "number" && delayMs >= longTimerMs && timer && typeof timer.unref === "function") {
    timer.unref();
  }
  return timer;
};
