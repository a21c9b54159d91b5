/**
 * An orchestrator's probe of the hub, timed: GET a URL on a fixed schedule
 * (every `everyMs`, whether the previous answer came or not, so a stalled
 * event loop shows as several slow answers and not as one, hiding the
 * probes it would have delayed) and keep each answer's time and status.
 * Used for /readyz (event loop plus an InfluxDB ping) and /healthz (the
 * event loop alone) while a scenario loads the hub.
 *
 * `connection: 'new'` opens a TCP connection for every probe and closes it
 * after, as the kubelet does (its HTTP probes disable keep-alive): the probe
 * then waits in the listen backlog with everyone else, which is what an
 * orchestrator sees during a reconnect storm; a kept-alive connection skips it.
 */
import http from 'node:http';
import { latencyFigures, type LatencyFigures } from './latency-figures.js';

/** status 0: no answer; `error` says why (ECONNREFUSED, ECONNRESET, timeout...). */
export type ProbeSample = { at: number; ms: number; status: number; error?: string };

export type ProbeFigures = LatencyFigures & { probes: number; notOk: number; byStatus: Record<string, number> };

export type ProbeConnection = 'keep-alive' | 'new';

export class HttpProbe {
  readonly samples: ProbeSample[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #pending = new Set<Promise<void>>();

  constructor(readonly url: string, everyMs = 1000, readonly timeoutMs = 10_000, readonly connection: ProbeConnection = 'keep-alive') {
    this.#timer = setInterval(() => this.#probe(), everyMs);
  }

  #probe(): void {
    const at = Date.now();
    const started = performance.now();
    const get = this.connection === 'new' ? getOnNewConnection(this.url, this.timeoutMs) : getKeptAlive(this.url, this.timeoutMs);
    const done = get.then(({ status, error }) => {
      this.samples.push({ at, ms: performance.now() - started, status, ...(error === undefined ? {} : { error }) });
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
    return probeFigures(this.samples, from, to, skip);
  }
}

/** HttpProbe.figures over any list of samples (the storm splits one probe's samples by phase). */
export function probeFigures(samples: ProbeSample[], from = 0, to = Infinity, skip: (s: ProbeSample) => boolean = () => false): ProbeFigures & { skipped: number } {
  const inRange = samples.filter((s) => s.at >= from && s.at <= to);
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

type Outcome = { status: number; error?: string };

const errorName = (err: unknown): string => {
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.cause?.code ?? e?.code ?? 'error';
};

function getKeptAlive(url: string, timeoutMs: number): Promise<Outcome> {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(
    async (res) => {
      await res.arrayBuffer();
      return { status: res.status };
    },
    (err: unknown) => ({ status: 0, error: errorName(err) }),
  );
}

function getOnNewConnection(url: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    // agent: false: a connection of its own, closed after the answer (Connection: close).
    const request = http.get(url, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.once('error', (err) => resolve({ status: 0, error: errorName(err) }));
    });
    request.once('error', (err) => resolve({ status: 0, error: errorName(err) }));
  });
}
