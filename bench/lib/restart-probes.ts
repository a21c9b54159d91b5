/**
 * The hub's /readyz and /healthz through a restart under a reconnecting
 * fleet, probed as an orchestrator probes them (HttpProbe: a fixed schedule,
 * whether the previous answer came or not, a new connection each), and at the
 * same moments a bare node:http server on the hub's core
 * (bench/servers/http-baseline.ts), so a slow answer can be put down to the
 * hub or to the machine.
 *
 * The samples are split by when each probe started:
 * - before: the steady load before the SIGTERM;
 * - down: from the SIGTERM until the new hub's banner. The old hub drains and
 *   exits, then nothing listens: these probes are refused or answered by a
 *   hub on its way out, which says nothing of how the new one copes with the
 *   storm, so they are counted apart, by outcome, and not timed;
 * - storm: from the new hub's banner until every device is back plus a few
 *   seconds (the reconnect window): the latencies the target is about.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpProbe, probeFigures, type ProbeFigures, type ProbeSample } from './http-probe.js';
import { Remote } from './ipc.js';
import { pin, sleep, type Placement } from './proc.js';

const HTTP_BASELINE_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'servers', 'http-baseline.ts');
/** A probe with no answer by then is counted as such (status 0, "timeout"), its time as this. */
const PROBE_TIMEOUT_MS = 10_000;

/** Epoch ms that bound the phases. */
export type RestartMoments = {
  /** The SIGTERM to the old hub. */
  sigtermAt: number;
  /** The new hub's banner (it listens). */
  bannerAt: number;
  /** The end of the reconnect window: every device back (or the wait given up) plus a few seconds. */
  windowEndAt: number;
};

/** Probe figures of one phase, and what each probe got: "200", "503", or why no answer ("ECONNREFUSED", "timeout"...). */
export type PhaseFigures = ProbeFigures & { outcomes: Record<string, number> };

/** Probes that fell while the hub was down: how many, by outcome; not latencies. */
export type DownCounts = { probes: number; refused: number; outcomes: Record<string, number> };

export type RestartResponsiveness = {
  everyMs: number;
  /** Seconds from the SIGTERM: the banner, and the reconnect window's end. */
  bannerS: number;
  windowEndS: number;
  before: { readyz: PhaseFigures; healthz: PhaseFigures; baseline: PhaseFigures; readyzKeptAlive?: PhaseFigures };
  down: { readyz: DownCounts; healthz: DownCounts };
  /**
   * readyzKeptAlive: /readyz over a kept-alive connection (reopened once after the
   * restart), at the same moments as `readyz`: the event loop's answer time without
   * the wait in the kernel's accept queue that a new connection has during a storm.
   */
  storm: { readyz: PhaseFigures; healthz: PhaseFigures; baseline: PhaseFigures; readyzKeptAlive?: PhaseFigures };
  /** Every /readyz probe (for the JSON: when the slow ones came, against the fleet's timeline): start in s from the SIGTERM, ms, outcome. */
  readyzTimeline: ProbeTimeline;
  /** The bare HTTP server's probes, the same way: what the machine did at those moments. */
  baselineTimeline: ProbeTimeline;
};

export type ProbeTimeline = Array<{ s: number; ms: number; outcome: string }>;

export const outcomeOf = (s: ProbeSample): string => (s.status === 0 ? (s.error ?? 'no answer') : String(s.status));

function tally(samples: ProbeSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[outcomeOf(s)] = (out[outcomeOf(s)] ?? 0) + 1;
  return out;
}

const inSpan = (samples: ProbeSample[], from: number, to: number) => samples.filter((s) => s.at >= from && s.at < to);

function phase(samples: ProbeSample[], from: number, to: number): PhaseFigures {
  // probeFigures takes [from, to]; a probe started exactly at `to` belongs to the next phase.
  const kept = inSpan(samples, from, to);
  return { ...probeFigures(kept), outcomes: tally(kept) };
}

function down(samples: ProbeSample[], m: RestartMoments): DownCounts {
  const kept = inSpan(samples, m.sigtermAt, m.bannerAt);
  return { probes: kept.length, refused: kept.filter((s) => s.error === 'ECONNREFUSED').length, outcomes: tally(kept) };
}

const timeline = (samples: ProbeSample[], from: number): ProbeTimeline =>
  samples.map((x) => ({ s: (x.at - from) / 1000, ms: Math.round(x.ms * 10) / 10, outcome: outcomeOf(x) }));

/** The three probes' samples split at the SIGTERM, the banner and the window's end. */
export function restartResponsiveness(
  samples: { readyz: ProbeSample[]; healthz: ProbeSample[]; baseline: ProbeSample[]; readyzKeptAlive?: ProbeSample[] }, m: RestartMoments, everyMs: number,
): RestartResponsiveness {
  const before = (s: ProbeSample[]) => phase(s, 0, m.sigtermAt);
  // The window's end is inclusive: a probe started at that very ms is still the storm's.
  const storm = (s: ProbeSample[]) => phase(s, m.bannerAt, m.windowEndAt + 1);
  return {
    everyMs,
    bannerS: (m.bannerAt - m.sigtermAt) / 1000,
    windowEndS: (m.windowEndAt - m.sigtermAt) / 1000,
    before: {
      readyz: before(samples.readyz), healthz: before(samples.healthz), baseline: before(samples.baseline),
      ...(samples.readyzKeptAlive ? { readyzKeptAlive: before(samples.readyzKeptAlive) } : {}),
    },
    down: { readyz: down(samples.readyz, m), healthz: down(samples.healthz, m) },
    storm: {
      readyz: storm(samples.readyz), healthz: storm(samples.healthz), baseline: storm(samples.baseline),
      ...(samples.readyzKeptAlive ? { readyzKeptAlive: storm(samples.readyzKeptAlive) } : {}),
    },
    readyzTimeline: timeline(samples.readyz, m.sigtermAt),
    baselineTimeline: timeline(samples.baseline, m.sigtermAt),
  };
}

/** The probes and the baseline server of one storm run: open (the server), start, stop, then split by phase. */
export class RestartProbes {
  readonly #server: Remote;
  readonly #baselineUrl: string;
  readonly #everyMs: number;
  #probes: { readyz: HttpProbe; healthz: HttpProbe; baseline: HttpProbe; readyzKeptAlive: HttpProbe } | undefined;
  /** Every probe as soon as it runs, so stop() ends them even if start() is still under way. */
  readonly #running: HttpProbe[] = [];

  private constructor(server: Remote, baselineUrl: string, everyMs: number) {
    this.#server = server;
    this.#baselineUrl = baselineUrl;
    this.#everyMs = everyMs;
  }

  /** Starts the baseline server, pinned where the hub is. */
  static async open(place: Placement, everyMs: number): Promise<RestartProbes> {
    const server = new Remote(HTTP_BASELINE_MODULE);
    try {
      pin(server.pid, place.subject, place);
      const { port } = await server.call<{ port: number }>('start');
      return new RestartProbes(server, `http://127.0.0.1:${port}/healthz`, everyMs);
    } catch (err) {
      await server.close();
      throw err;
    }
  }

  /** Probes `hubBaseUrl` (the same port across the restart) and the baseline from now on. */
  async start(hubBaseUrl: string): Promise<void> {
    const every = this.#everyMs;
    // The baseline at the moments /readyz is probed; /healthz half a period later, as the soak does.
    const probe = (url: string, connection: 'new' | 'keep-alive' = 'new') => {
      const p = new HttpProbe(url, every, PROBE_TIMEOUT_MS, connection);
      this.#running.push(p);
      return p;
    };
    const readyz = probe(`${hubBaseUrl}/readyz`);
    const baseline = probe(this.#baselineUrl);
    const readyzKeptAlive = probe(`${hubBaseUrl}/readyz`, 'keep-alive');
    await sleep(every / 2);
    const healthz = probe(`${hubBaseUrl}/healthz`);
    this.#probes = { readyz, healthz, baseline, readyzKeptAlive };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#running.map((p) => p.stop()));
  }

  figures(m: RestartMoments): RestartResponsiveness | undefined {
    if (!this.#probes) return undefined;
    const { readyz, healthz, baseline, readyzKeptAlive } = this.#probes;
    return restartResponsiveness({ readyz: readyz.samples, healthz: healthz.samples, baseline: baseline.samples, readyzKeptAlive: readyzKeptAlive.samples }, m, this.#everyMs);
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#server.close();
  }
}
