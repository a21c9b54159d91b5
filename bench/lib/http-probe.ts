/**
 * An orchestrator's probe of the hub, timed: GET a URL on a fixed schedule
 * (every `everyMs`, whether the previous answer came or not, so a stalled
 * event loop shows as several slow answers and not as one, hiding the
 * probes it would have delayed) and keep each answer's time and status.
 * Used for /readyz (event loop plus an InfluxDB ping) and /healthz (the
 * event loop alone) while a scenario loads the hub.
 */
import { latencyFigures, type LatencyFigures } from './latency-figures.js';

/** status 0: no answer (connection error or the timeout). */
export type ProbeSample = { at: number; ms: number; status: number };

export type ProbeFigures = LatencyFigures & { probes: number; notOk: number; byStatus: Record<string, number> };

export class HttpProbe {
  readonly samples: ProbeSample[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #pending = new Set<Promise<void>>();

  constructor(readonly url: string, everyMs = 1000, readonly timeoutMs = 10_000) {
    this.#timer = setInterval(() => this.#probe(), everyMs);
  }

  #probe(): void {
    const at = Date.now();
    const started = performance.now();
    const done = fetch(this.url, { signal: AbortSignal.timeout(this.timeoutMs) }).then(
      async (res) => {
        await res.arrayBuffer();
        return res.status;
      },
      () => 0,
    ).then((status) => {
      this.samples.push({ at, ms: performance.now() - started, status });
    });
    this.#pending.add(done);
    void done.finally(() => this.#pending.delete(done));
  }

  /** Stops probing and waits for the probes in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#pending);
  }

  /** Latencies of the probes started within [from, to], leaving out those that `skip` says overlapped something the bench did itself. */
  figures(from = 0, to = Infinity, skip: (s: ProbeSample) => boolean = () => false): ProbeFigures & { skipped: number } {
    const inRange = this.samples.filter((s) => s.at >= from && s.at <= to);
    const kept = inRange.filter((s) => !skip(s));
    const byStatus: Record<string, number> = {};
    for (const s of kept) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    return {
      ...latencyFigures(kept.map((s) => s.ms)),
      probes: kept.length,
      notOk: kept.filter((s) => s.status !== 200).length,
      byStatus,
      skipped: inRange.length - kept.length,
    };
  }
}
