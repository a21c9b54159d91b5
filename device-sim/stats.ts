/**
 * Fleet-wide counters and the send-to-ACK latency histogram. One Stats object
 * is shared by every simulated device: per-device counters would cost memory
 * at 50,000 devices and nobody reads them one by one.
 */

/**
 * Log-scale histogram: bucket i holds latencies up to MIN_MS * GROWTH^i, so
 * percentiles are exact to within 5 % at any scale from 0.05 ms to hours,
 * in a fixed 300-odd numbers instead of one per sample.
 */
export class LatencyHistogram {
  static readonly MIN_MS = 0.05;
  static readonly GROWTH = 1.05;
  readonly #buckets: number[] = [];
  count = 0;
  max = 0;
  sum = 0;

  /** The whole state as plain numbers: what a child process sends so its parent can merge percentiles. */
  toJSON(): HistogramData {
    return { buckets: [...this.#buckets], count: this.count, max: this.max, sum: this.sum };
  }

  /** Adds another histogram's samples (same bucket bounds), as if they had been recorded here. */
  add(other: HistogramData): void {
    other.buckets.forEach((n, i) => {
      while (this.#buckets.length <= i) this.#buckets.push(0);
      this.#buckets[i]! += n;
    });
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  record(ms: number): void {
    const v = Math.max(0, ms);
    const i = v <= LatencyHistogram.MIN_MS ? 0 : Math.ceil(Math.log(v / LatencyHistogram.MIN_MS) / Math.log(LatencyHistogram.GROWTH));
    while (this.#buckets.length <= i) this.#buckets.push(0);
    this.#buckets[i]! += 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** The upper bound of the bucket holding the q-quantile (0 < q <= 1), capped at the largest sample. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i]!;
      if (seen >= rank) return Math.min(this.max, LatencyHistogram.MIN_MS * LatencyHistogram.GROWTH ** i);
    }
    return this.max;
  }
}

export type HistogramData = { buckets: number[]; count: number; max: number; sum: number };

/** Counts by a small key (ACK code, close code, command outcome). */
export type Tally = Record<string, number>;

function bump(tally: Tally, key: string | number, by = 1): void {
  tally[key] = (tally[key] ?? 0) + by;
}

function addTally(into: Tally, from: Tally): void {
  for (const [key, n] of Object.entries(from)) bump(into, key, n);
}

/** The counters of Stats that add up across processes (every number field but startedAt). */
const COUNTERS = ['sent', 'records', 'resent', 'dropped', 'connects', 'desired', 'reported', 'firmwareErrors', 'malformedSent', 'flaps'] as const;
const TALLIES = ['acks', 'disconnects', 'connectFailures', 'commands', 'commandNames', 'errors'] as const;

/** Stats as plain data (structured-clone and JSON safe), for IPC between the processes of one fleet. */
export type StatsData = { startedAt: number; latency: HistogramData }
  & Record<(typeof COUNTERS)[number], number>
  & Record<(typeof TALLIES)[number], Tally>;

export class Stats {
  readonly startedAt: number;
  /** Distinct TELEMETRY messages sent (first transmissions). */
  sent = 0;
  /** Records in those messages. */
  records = 0;
  /** Retransmissions: after a reconnect or an ACK 4. */
  resent = 0;
  /** ACKs by code; 0 and 1 mean stored. */
  readonly acks: Tally = {};
  /** Messages dropped after ACK 2, 3 or 5 (the device moves on). */
  dropped = 0;
  /** Connection attempts that reached OPEN. */
  connects = 0;
  /** Closes by code (1006 = dropped without a close frame, as ws reports it). */
  readonly disconnects: Tally = {};
  /** Handshakes that failed: "http 401", "unreachable"... */
  readonly connectFailures: Tally = {};
  /** COMMAND outcomes: succeeded, rejected, received (the RESULT 0 of a reboot). */
  readonly commands: Tally = {};
  readonly commandNames: Tally = {};
  /** DESIRED messages applied. */
  desired = 0;
  /** REPORTED messages sent. */
  reported = 0;
  /** 1003/1007/1009 closes: the hub says our firmware is wrong. */
  firmwareErrors = 0;
  /** Chaos: invalid frames sent and connections dropped on purpose. */
  malformedSent = 0;
  flaps = 0;
  /** Frames from the hub we could not decode, sockets errors, unknown seqs. */
  readonly errors: Tally = {};
  readonly latency = new LatencyHistogram();

  constructor(startedAt = Date.now()) {
    this.startedAt = startedAt;
  }

  /**
   * The sum of several processes' stats: counters and tallies add up, the
   * histograms merge bucket by bucket (so percentiles stay right, which
   * averaging per-process percentiles would not), the start is the earliest.
   */
  static merge(parts: readonly StatsData[], startedAt = Date.now()): Stats {
    const total = new Stats(parts.length ? Math.min(...parts.map((p) => p.startedAt)) : startedAt);
    for (const part of parts) {
      for (const key of COUNTERS) total[key] += part[key];
      for (const key of TALLIES) addTally(total[key], part[key]);
      total.latency.add(part.latency);
    }
    return total;
  }

  toJSON(): StatsData {
    const data = { startedAt: this.startedAt, latency: this.latency.toJSON() } as StatsData;
    for (const key of COUNTERS) data[key] = this[key];
    for (const key of TALLIES) data[key] = { ...this[key] };
    return data;
  }

  ack(code: number): void {
    bump(this.acks, code);
  }
  disconnect(code: number): void {
    bump(this.disconnects, code);
  }
  connectFailure(why: string): void {
    bump(this.connectFailures, why);
  }
  command(name: string, outcome: string): void {
    bump(this.commands, outcome);
    bump(this.commandNames, name);
  }
  error(kind: string): void {
    bump(this.errors, kind);
  }

  get acked(): number {
    return Object.values(this.acks).reduce((a, b) => a + b, 0);
  }
  get errorCount(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0) + this.firmwareErrors;
  }
}

/** What runFleet returns and --summary writes (JSON). */
export type Summary = {
  devices: number;
  profile: string;
  url: string;
  durationSeconds: number;
  telemetry: {
    sent: number;
    records: number;
    resent: number;
    acknowledged: Tally;
    /** ACK 0 plus ACK 1: durably stored. */
    stored: number;
    dropped: number;
    /** Sent but neither acknowledged nor dropped when the run ended: lost, as far as the device knows. */
    unacknowledged: number;
  };
  connections: { connects: number; connectFailures: Tally; disconnects: Tally; connectedAtEnd: number };
  commands: { byOutcome: Tally; byName: Tally; desiredApplied: number; reportedSent: number };
  chaos: { zombies: number; flapping: number; malformed: number; flaps: number; malformedSent: number; clockSkewSeconds: number };
  firmwareErrors: number;
  errors: Tally;
  latencyMs: { count: number; p50: number; p99: number; max: number; mean: number };
  /** Only with more than one process (--processes): how many, and which ended without their summary. */
  processes?: { count: number; failed: ProcessFailure[] };
};

/**
 * A simulator process that crashed, was killed or exited without its summary.
 * Its figures in the fleet's summary are those of its last report (sent every
 * second), and what it had in flight counts as unacknowledged.
 */
export type ProcessFailure = { process: number; devices: string; exit: string };

export const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
