/**
 * The node options the hub is meant to run with, and a check that it does.
 *
 * `--min-semi-space-size=16`: V8's young generation starts at 1 MiB and
 * shrinks again when the hub is quiet, so when load steps up (100 to 1,000
 * commands/s) the hub collects it every few milliseconds and promotes what
 * a command still holds into the old generation, whose collections then
 * stall the event loop. Starting at 16 MiB (V8's own upper bound on 64-bit,
 * which a busy hub grows to anyway) took a fresh hub's command round-trip
 * p99 at 1,000/s from 194-285 ms to 25-147 ms, and from 6 s into the phase
 * from 212-296 ms to 16-55 ms, in four alternated one-round runs
 * (BENCHMARKS.md, Findings, commands; the later rounds of a full run stay
 * slow for a reason not found yet). The cost is up to 32 MiB of memory that
 * a quiet hub would not have touched.
 *
 * V8 reads the size when the process starts, and Node does not accept it in
 * NODE_OPTIONS, so it goes on the command line: `npm start`, the Dockerfile,
 * docs/deploy.md and the bench start the hub with HUB_NODE_OPTIONS.
 */
export const HUB_NODE_OPTIONS = ['--min-semi-space-size=16'] as const;

/** Whether `execArgv` (process.execArgv) sets the young generation's starting size. */
export function setsYoungGeneration(execArgv: readonly string[]): boolean {
  return execArgv.some((arg) => /^--min[-_]semi[-_]space[-_]size=/.test(arg));
}
