#!/usr/bin/env node
/**
 * pulsewire-sim: the command line of device-sim (`npm run sim -- ...`).
 * Exit codes: 0 after a normal end (duration over, Ctrl-C, SIGTERM), 1 when
 * the run failed (with --processes: also when one of them died), 2 for a bad
 * option (the message names it and what it allows).
 *
 * With --processes above 1 this process is the parent (processes.ts) and
 * starts the same command line again as its children; a child knows itself
 * by PART_ENV in its environment (child.ts).
 */
import { parseArgs } from 'node:util';
import { partFromEnv, runChild } from './child.js';
import { formatSummary, runFleet } from './index.js';
import { helpText, OptionError, PARSE_CONFIG, resolveOptions, type SimOptions } from './options.js';
import { runProcesses } from './processes.js';

function fail(message: string, code: number): never {
  process.stderr.write(`pulsewire-sim: ${message}\n`);
  if (code === 2) process.stderr.write('Try --help for the options and their allowed values.\n');
  process.exit(code);
}

function parse(): SimOptions | undefined {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ options: PARSE_CONFIG, strict: true, allowPositionals: false }));
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--devcies'" or "Option '--rate <value>' argument missing".
    return fail((err as Error).message, 2);
  }
  if (values.help) {
    process.stdout.write(helpText());
    return undefined;
  }
  try {
    return resolveOptions(values);
  } catch (err) {
    if (err instanceof OptionError) return fail(err.message, 2);
    throw err;
  }
}

async function main(): Promise<void> {
  const options = parse();
  if (!options) return;
  const part = partFromEnv();
  const controller = new AbortController();
  let signals = 0;
  let force: (() => void) | undefined;
  const onSignal = (name: string) => {
    // First signal: orderly stop. A second one: the user means it.
    if (++signals > 1) {
      force?.();
      process.exit(130);
    }
    // A child says nothing: on a terminal Ctrl-C reaches every process, and the parent speaks for the fleet.
    if (!part) process.stderr.write(`\npulsewire-sim: ${name}, stopping: waiting up to 10 s for outstanding ACKs (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  if (part) return runChild(options, part, controller.signal);

  const split = options.processes > 1 ? ` in ${options.processes} processes` : '';
  process.stderr.write(`pulsewire-sim: ${options.devices} devices (${options.profile}) -> ${options.url}${split}, ramp ${options.ramp}/s, ` +
    `${options.rate} msg/s each, ${options.duration ? `${options.duration} s` : 'until Ctrl-C'}\n`);
  if (options.processes === 1) {
    const summary = await runFleet(options, { signal: controller.signal });
    process.stdout.write(`${formatSummary(summary)}\n`);
    if (options.summary) process.stdout.write(`  summary JSON     ${options.summary}\n`);
    process.exit(0);
  }
  const { summary, processes } = await runProcesses(options, { script: process.argv[1]!, argv: process.argv.slice(2) }, {
    signal: controller.signal,
    onStart: (p) => (force = () => p.kill()),
  });
  process.stdout.write(`${formatSummary(summary)}\n`);
  if (options.summary) process.stdout.write(`  summary JSON     ${options.summary}\n`);
  process.exit(processes.badOption ? 2 : processes.failures.length > 0 ? 1 : 0);
}

main().catch((err: unknown) => {
  // A secrets file without an id's secret is only found when the fleet is built.
  if (err instanceof OptionError) fail(err.message, 2);
  fail(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
