/**
 * `--processes N`: one fleet over N simulator processes, because one process
 * holds at most its open-files limit of sockets (about 19,700 devices at the
 * hard limit of 20,000 here). The parent splits the fleet into N contiguous
 * ranges of the ids one process would create, starts N children of the same
 * CLI (child.ts), shows one status line from their reports and prints one
 * summary merged from theirs: counters and tallies summed, latency
 * percentiles from the merged histograms.
 *
 * Stopping (Ctrl-C, SIGTERM, the end of --duration in each child) drains
 * every child as a single process drains. A child that dies is reported in
 * the summary with the figures of its last report, and the run fails; one
 * that refused an option (exit 2) makes the run exit 2. If the parent dies,
 * the children see their IPC channel close and exit (child.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { PART_ENV, type ChildMessage, type ParentMessage, type Part } from './child.js';
import type { Snapshot } from './fleet.js';
import { deviceId, idWidth, type SimOptions } from './options.js';
import { StatusLine, type StatusSource } from './status.js';
import { Stats, type ProcessFailure } from './stats.js';
import { buildSummary, type EndState, type Summary } from './summary.js';

type StatusReport = Extract<ChildMessage, { type: 'status' }>;
type DoneReport = Extract<ChildMessage, { type: 'done' }>;

/** N contiguous ranges, sizes differing by at most one; each gets its share of the ramp. */
export function splitFleet(options: Pick<SimOptions, 'devices' | 'first' | 'ramp' | 'processes'>): Part[] {
  const { devices, processes, ramp } = options;
  const fleetLast = options.first + devices - 1;
  const base = Math.floor(devices / processes);
  let offset = 0;
  return Array.from({ length: processes }, (_, index) => {
    const size = base + (index < devices % processes ? 1 : 0);
    const part: Part = { index, offset, devices: size, fleetLast, ramp: (ramp * size) / devices };
    offset += size;
    return part;
  });
}

class Child {
  ready = false;
  latest: StatusReport | undefined;
  done: DoneReport | undefined;
  exit: string | undefined;
  exitCode: number | null = null;
  readonly exited: Promise<void>;

  constructor(readonly part: Part, readonly process: ChildProcess, onMessage: (child: Child, message: ChildMessage) => void) {
    const proc = process;
    proc.on('message', (message: ChildMessage) => onMessage(this, message));
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
      // Kept for the process's life: an 'error' without a listener would end the parent.
      proc.on('error', (err) => {
        // Could not be started at all: no 'exit' follows.
        if (this.exit !== undefined || proc.pid !== undefined) return;
        this.exit = `could not start: ${err.message}`;
        resolve();
      });
    });
  }

  get failed(): boolean {
    return this.exit !== undefined && (this.done === undefined || this.exitCode !== 0);
  }

  send(message: ParentMessage): void {
    // A callback, so a child that has just died is not an 'error' event here.
    if (this.process.connected) this.process.send(message, undefined, {}, () => {});
  }
}

export type SpawnOptions = {
  /** The CLI script to run again (process.argv[1]); node options (tsx's loader) are inherited. */
  script: string;
  /** The command line, passed on unchanged: children resolve the same options. */
  argv: readonly string[];
  env?: NodeJS.ProcessEnv;
  warn?: (line: string) => void;
};

/** The parent's view of its children; a StatusSource for the one status line. */
export class FleetProcesses implements StatusSource {
  readonly size: number;
  readonly #options: SimOptions;
  readonly #children: Child[];
  readonly #startedAt = Date.now();
  readonly #warn: (line: string) => void;
  #stopping = false;

  constructor(options: SimOptions, spawn: SpawnOptions) {
    this.#options = options;
    this.size = options.devices;
    this.#warn = spawn.warn ?? ((line) => process.stderr.write(`pulsewire-sim: ${line}\n`));
    this.#children = splitFleet(options).map((part) => new Child(part, fork(spawn.script, [...spawn.argv], {
      env: { ...(spawn.env ?? process.env), [PART_ENV]: JSON.stringify(part) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }), (child, message) => this.#onMessage(child, message)));
    for (const child of this.#children) {
      void child.exited.then(() => {
        if (child.failed && !this.#allExited()) this.#warn(`process ${this.#describe(child)} ${child.exit}; the others go on, and the summary will say so`);
      });
    }
  }

  /** Process ids of the children, for tests that check none is left behind. */
  get pids(): number[] {
    return this.#children.flatMap((c) => (c.process.pid === undefined ? [] : [c.process.pid]));
  }

  /** Sum of the children's latest reports (a final one once a child is done). */
  get stats(): Stats {
    return Stats.merge(this.#children.flatMap((c) => (c.done ?? c.latest)?.stats ?? []), this.#startedAt);
  }

  snapshot(): Snapshot {
    const total: Snapshot = { connected: 0, connecting: 0, waiting: 0, notStarted: 0, inFlight: 0 };
    for (const c of this.#children) {
      if (c.done || c.exit) continue;
      if (!c.latest) {
        total.notStarted += c.part.devices;
        continue;
      }
      for (const key of Object.keys(total) as (keyof Snapshot)[]) total[key] += c.latest.snapshot[key];
    }
    return total;
  }

  /** Asks every child to stop as one process stops: drain, close with 1000, report. Idempotent. */
  stop(): void {
    this.#stopping = true;
    for (const c of this.#children) if (c.ready) c.send({ type: 'stop' });
  }

  /** A second Ctrl-C: no draining, nothing left running. */
  kill(): void {
    for (const c of this.#children) if (c.exit === undefined) c.process.kill('SIGKILL');
  }

  /** Resolves once every child has exited (normally at the end of --duration, or after stop()). */
  async finished(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.exited));
  }

  get failures(): ProcessFailure[] {
    return this.#children.filter((c) => c.failed).map((c) => ({
      process: c.part.index + 1,
      devices: this.#range(c.part),
      exit: c.done ? c.exit! : `${c.exit}, without its summary`,
    }));
  }

  /** A child refused an option the parent could not check (a --secrets file without some id's secret). */
  get badOption(): boolean {
    return this.#children.some((c) => c.exitCode === 2 && !c.done);
  }

  /** The fleet's summary; a failed child counts with its last report, its messages in flight as unacknowledged. */
  summary(): Summary {
    const sum = (f: (c: Child) => number) => this.#children.reduce((n, c) => n + f(c), 0);
    const ends = this.#children.flatMap((c) => (c.done ? [c.done.end.endedAt] : []));
    const end: EndState = {
      endedAt: ends.length ? Math.max(...ends) : Date.now(),
      connectedAtEnd: sum((c) => c.done?.end.connectedAtEnd ?? 0),
      unacknowledged: sum((c) => c.done?.end.unacknowledged ?? c.latest?.snapshot.inFlight ?? 0),
      zombies: sum((c) => (c.done?.end ?? c.latest?.chaos)?.zombies ?? 0),
      flapping: sum((c) => (c.done?.end ?? c.latest?.chaos)?.flapping ?? 0),
      malformed: sum((c) => (c.done?.end ?? c.latest?.chaos)?.malformed ?? 0),
    };
    return { ...buildSummary(this.stats, this.#options, end), processes: { count: this.#children.length, failed: this.failures } };
  }

  #onMessage(child: Child, message: ChildMessage): void {
    if (message.type === 'ready') {
      child.ready = true;
      // Ctrl-C before this child was listening: tell it now.
      if (this.#stopping) child.send({ type: 'stop' });
    } else if (message.type === 'status') {
      child.latest = message;
    } else if (message.type === 'done') {
      child.done = message;
    }
  }

  #allExited(): boolean {
    return this.#children.every((c) => c.exit !== undefined);
  }

  #range(part: Part): string {
    const first = this.#options.first + part.offset;
    const width = idWidth(part.fleetLast);
    return `${deviceId(this.#options.prefix, first, width)}..${deviceId(this.#options.prefix, first + part.devices - 1, width)}`;
  }

  #describe(child: Child): string {
    return `#${child.part.index + 1} (${this.#range(child.part)})`;
  }
}

export type ProcessesControl = {
  signal?: AbortSignal;
  /** Called with the processes once they are started (the CLI's second Ctrl-C kills them). */
  onStart?: (processes: FleetProcesses) => void;
};

/** runFleet for a fleet over several processes: one status line, one summary (also written to --summary). */
export async function runProcesses(options: SimOptions, spawn: SpawnOptions, control: ProcessesControl = {}): Promise<{ summary: Summary; processes: FleetProcesses }> {
  const processes = new FleetProcesses(options, spawn);
  control.onStart?.(processes);
  const status = new StatusLine(processes, options.status);
  const stop = () => processes.stop();
  if (control.signal?.aborted) stop();
  control.signal?.addEventListener('abort', stop, { once: true });
  try {
    await processes.finished();
  } finally {
    control.signal?.removeEventListener('abort', stop);
    status.stop();
  }
  const summary = processes.summary();
  if (options.summary) await writeFile(options.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return { summary, processes };
}
