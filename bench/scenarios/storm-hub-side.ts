/**
 * The new hub's side of a reconnect storm, from its readiness to the end of
 * the reconnect window: what it refused before the upgrade and why (which
 * admission limit paced the fleet), its own event-loop delay, the CPU it got
 * (a hub at its whole core is doing the storm's work; one far below it while
 * its answers are slow is waiting for the CPU, e.g. niced among neighbours),
 * and how often a full listen backlog turned a connection away (machine-wide).
 * Together they say where a slow /readyz comes from.
 */
import { metricByLabel, parseMetrics, type HubProcess } from '../lib/hub-process.js';
import { CpuMeter, listenOverflows, type CpuMark } from '../lib/proc.js';

export type StormHubSide = {
  /** Upgrades answered 503 (or 404) before the upgrade, by reason: which admission limit paced the storm. */
  handshakeRefusals: Record<string, number>;
  /** prom-client's event-loop delay monitor (10 ms resolution) between two scrapes: at readiness and at the window's end. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** % of one core: the hub's processes (summed), its influxd, and the whole machine (two cores: up to 200 %). */
  cpuPercent: { hub: number; influxd: number; machine: number };
  /** The hub's CPU seconds over the span, and the span's length. */
  cpuSeconds: number;
  spanS: number;
  /** The old hub's CPU, % of one core, over the steady load before the restart (the same fleet sending): subtracted to get a reconnect's cost. */
  steadyCpuPercent: number;
  /** TcpExt ListenOverflows / ListenDrops over the same span, this network namespace, anyone's listener. */
  listenOverflows?: number;
  listenDrops?: number;
};

/**
 * steadyFrom() and steadyTo() around the steady load before the SIGTERM (the old hub); begin() when the new hub is
 * ready (it resets prom-client's event-loop monitor with a scrape), end() at the window's end.
 */
export type HubSideMeter = { steadyFrom(): void; steadyTo(): void; begin(): Promise<void>; end(): Promise<StormHubSide | undefined> };

export function hubSideMeter(current: () => HubProcess): HubSideMeter {
  const ms = (m: Map<string, number>, name: string) => (m.get(`pulsewire_nodejs_eventloop_lag_${name}_seconds`) ?? NaN) * 1000;
  const meter = new CpuMeter();
  meter.add('hub', () => current().processes().hub);
  meter.add('influxd', () => current().processes().influxd);
  let mark: CpuMark | undefined;
  let steadyMark: CpuMark | undefined;
  let steadyCpuPercent = NaN;
  let backlog: ReturnType<typeof listenOverflows>;
  return {
    steadyFrom() {
      steadyMark = meter.mark();
    },
    steadyTo() {
      if (steadyMark) steadyCpuPercent = meter.since(steadyMark).percent.hub ?? NaN;
    },
    async begin() {
      mark = meter.mark();
      backlog = listenOverflows();
      await current().metricsText().catch(() => undefined);
    },
    async end() {
      const cpu = mark ? meter.since(mark) : undefined;
      const backlogNow = listenOverflows();
      try {
        const text = await current().metricsText();
        const m = parseMetrics(text);
        return {
          handshakeRefusals: metricByLabel(text, 'pulsewire_handshake_refusals_total', 'reason'),
          eventLoopDelayMs: { p50: ms(m, 'p50'), p99: ms(m, 'p99'), max: ms(m, 'max') },
          cpuPercent: { hub: cpu?.percent.hub ?? NaN, influxd: cpu?.percent.influxd ?? NaN, machine: cpu?.machinePercent ?? NaN },
          cpuSeconds: cpu?.seconds.hub ?? NaN, spanS: cpu?.wallS ?? NaN, steadyCpuPercent,
          ...(backlog && backlogNow ? { listenOverflows: backlogNow.overflows - backlog.overflows, listenDrops: backlogNow.drops - backlog.drops } : {}),
        };
      } catch {
        // The hub too busy to answer its /metrics in time: the counts are left out, the run goes on.
        return undefined;
      }
    },
  };
}
