/**
 * The hub under test as its own process, the way an operator runs it:
 * `node dist/src/main.js` (or, for the smoke test, the sources through tsx),
 * on a free port with a fresh data dir, with its managed influxd unless an
 * InfluxDB URL is given. Its banner says where it listens and where its
 * InfluxDB is; /metrics (operator token) says the rest. With `workers` > 1 it
 * is a hub of several processes (PULSEWIRE_WORKERS): the child is the primary,
 * its children the workers, nats-server and influxd (processes() names them),
 * and /metrics is the sum over the workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectInflux } from '../../src/storage/influx-connection.js';
import { collectGarbage } from './inspector.js';
import { findChild, findChildren, until } from './proc.js';

export const BENCH_ENROLLMENT_KEY = 'bench-enrollment-key-0123456789';
export const BENCH_OPERATOR_TOKEN = 'bench-operator-token-0123456789';

export type HubOptions = {
  /** Node arguments that run the hub; default the built dist. */
  entry?: string[];
  /** PULSEWIRE_INFLUX_URL; unset: the hub manages its own influxd. */
  influxUrl?: string;
  env?: Record<string, string>;
  /** Reuse this data dir (kept at stop) instead of a fresh one (removed at stop): a restart of the same hub. */
  dataDir?: string;
  /**
   * Listen on this port (a restart where devices reconnect to the same URL); default a free one.
   * Retried for up to 30 s while another process holds it: on a shared machine (the test suite's
   * smoke test of `storm`) the port freed by the stopped hub may be taken meanwhile.
   */
  port?: number;
  /** Open the inspector on a free loopback port (inspectorUrl, collectGarbage()); workers get the next ports. */
  inspector?: boolean;
  /** PULSEWIRE_WORKERS: a primary process and this many workers sharing the port (default: one process). */
  workers?: number;
};

/** The processes of a running hub, by role (read from /proc when asked: a worker that died is replaced by a new pid). */
export type HubPids = {
  /** The hub's own processes: the one process, or the primary and its workers. */
  hub: number[];
  workers: number[];
  natsServer: number | undefined;
  influxd: number | undefined;
};

export type HubProcess = {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly baseUrl: string;
  readonly deviceUrl: string;
  /** http://127.0.0.1:PORT/pulsewire: the database the hub writes to. */
  readonly databaseUrl: string;
  readonly dataDir: string;
  /** Epoch ms at which the banner (the InfluxDB line, its last) was read: the hub listens on every worker; /readyz may still be 503. */
  readonly bannerAt: number;
  metrics(): Promise<Metrics>;
  /** /metrics as the hub wrote it (histogram buckets by label; see prom-histogram.ts). */
  metricsText(): Promise<string>;
  /** The inspector's ws:// URL (with `inspector: true`; see inspector.ts); the primary's in a hub of workers. */
  readonly inspectorUrl: string | undefined;
  /** Every process's inspector URL: the primary's and each worker's. */
  readonly inspectorUrls: string[];
  /** A full garbage collection in every process of the hub, through its inspector (needs `inspector: true`). */
  collectGarbage(): Promise<void>;
  processes(): HubPids;
  /** Exit code or signal once the process ended (0: clean; 1: the hub's shutdown deadline; SIGKILL: ours). */
  exitStatus(): string | undefined;
  stop(): Promise<void>;
};

/** Metric name -> value, summed over label sets. */
export type Metrics = Map<string, number>;

export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const brace = line.indexOf('{');
    const name = line.slice(0, brace >= 0 && brace < space ? brace : space);
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(space + 1)));
  }
  return out;
}

/** One metric of /metrics text by the value of one label, e.g. pulsewire_disconnects_total by reason; summed over other labels. */
export function metricByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const pattern = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(pattern)) {
    const value = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(m[1]!)?.[1] ?? '';
    out[value] = (out[value] ?? 0) + Number(m[2]);
  }
  return out;
}

export const DEFAULT_HUB_ENTRY = ['dist/src/main.js'];

/** A probe's `--env K=V,K2=V2` as the hub's extra environment. */
export function parseEnvList(text: string | undefined): Record<string, string> {
  return Object.fromEntries((text ?? '').split(',').filter(Boolean).map((kv) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
}

const PORT_RETRY_MS = 30_000;
/** The banner's last line names the hub's InfluxDB; with it the hub (every worker of it) listens. */
const BANNER_DONE = /InfluxDB:\s+\S+/;

export async function startHubProcess(options: HubOptions = {}): Promise<HubProcess> {
  const deadline = Date.now() + PORT_RETRY_MS;
  for (;;) {
    try {
      return await startHubProcessOnce(options);
    } catch (err) {
      const portTaken = options.port !== undefined && options.port !== 0 && err instanceof PortTakenError;
      if (!portTaken || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** The hub exited 4 saying EADDRINUSE: its fixed port is held by another process. */
class PortTakenError extends Error {}

async function startHubProcessOnce(options: HubOptions): Promise<HubProcess> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'pulsewire-bench-hub-'));
  const removeDir = () => { if (ownDir) rmSync(dataDir, { recursive: true, force: true }); };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PULSEWIRE_HOST: '127.0.0.1',
    PULSEWIRE_PORT: String(options.port ?? 0),
    PULSEWIRE_DATA_DIR: dataDir,
    PULSEWIRE_ENROLLMENT_KEY: BENCH_ENROLLMENT_KEY,
    PULSEWIRE_OPERATOR_TOKEN: BENCH_OPERATOR_TOKEN,
    // PULSEWIRE_BENCH_HUB_LOG_LEVEL / PULSEWIRE_BENCH_HUB_LOG (a file the hub's log is appended to): to look into a run.
    PULSEWIRE_LOG_LEVEL: process.env.PULSEWIRE_BENCH_HUB_LOG_LEVEL ?? 'error',
    ...(options.influxUrl ? { PULSEWIRE_INFLUX_URL: options.influxUrl } : {}),
    ...(options.workers !== undefined ? { PULSEWIRE_WORKERS: String(options.workers) } : {}),
    ...options.env,
  };
  if (!options.influxUrl) delete env.PULSEWIRE_INFLUX_URL;
  // PULSEWIRE_BENCH_HUB_NODE_ARGS: node options for the hub alone, in front of its entry, to try one (V8's heap
  // sizes are not allowed in NODE_OPTIONS; BENCHMARKS.md, Findings, commands: --min-semi-space-size).
  const nodeArgs = (process.env.PULSEWIRE_BENCH_HUB_NODE_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
  const entry = [...nodeArgs, ...(options.inspector ? ['--inspect=127.0.0.1:0'] : []), ...(options.entry ?? DEFAULT_HUB_ENTRY)];
  const child = spawn(process.execPath, entry, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const inspectorUrls: string[] = [];
  let banner = '';
  let bannerAt = 0;
  let stderr = '';
  const logFile = process.env.PULSEWIRE_BENCH_HUB_LOG;
  // Only the banner is needed from stdout; keeping every log line would grow without bound.
  child.stdout!.on('data', (chunk) => {
    if (banner.length < 64 * 1024) banner += chunk;
    // Read here rather than when the poll below sees it: the storm times its probes from this moment.
    if (bannerAt === 0 && BANNER_DONE.test(banner)) bannerAt = Date.now();
    if (logFile) appendFileSync(logFile, chunk);
  });
  child.stderr!.on('data', (chunk) => {
    const text = String(chunk);
    stderr = (stderr + text).slice(-4000);
    // Workers inherit the primary's --inspect (node:cluster gives each the next port) and write to the same stderr.
    for (const m of text.matchAll(/Debugger listening on (ws:\/\/\S+)/g)) inspectorUrls.push(m[1]!);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const listening = await until(() => BANNER_DONE.test(banner) || child.exitCode !== null, 60_000, 50);
  const base = /Pulsewire hub on (http:\/\/\S+)/.exec(banner)?.[1];
  const influxLine = /InfluxDB:\s+(http:\/\/\S+)/.exec(banner)?.[1];
  if (!listening || !base || !influxLine) {
    child.kill('SIGKILL');
    // All of its stderr: 'close' comes after the pipes are drained, 'exit' may come before.
    if (child.stdout!.readable || child.stderr!.readable) await new Promise((resolve) => child.once('close', resolve));
    removeDir();
    const message = `hub did not start; stdout:\n${banner}\nstderr:\n${stderr}`;
    throw child.exitCode === 4 && /EADDRINUSE/.test(stderr) ? new PortTakenError(message) : new Error(message);
  }
  const baseUrl = base.replace('localhost', '127.0.0.1');
  // Managed: the banner shows the influxd root; external: the configured URL with its database.
  const databaseUrl = options.influxUrl ?? `${influxLine}/pulsewire`;
  const ready = await until(() => fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false), 30_000);
  if (!ready) throw new Error(`hub at ${baseUrl} not ready within 30 s; stderr:\n${stderr}`);
  const processes = (): HubPids => {
    const workers = findChildren(child.pid!, 'node');
    return { hub: [child.pid!, ...workers], workers, natsServer: findChild(child.pid!, 'nats-server'), influxd: findChild(child.pid!, 'influxd') };
  };
  const metricsText = async (): Promise<string> =>
    (await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${BENCH_OPERATOR_TOKEN}` } })).text();
  return {
    child,
    pid: child.pid!,
    baseUrl,
    deviceUrl: `${baseUrl.replace(/^http/, 'ws')}/v1/device`,
    databaseUrl,
    dataDir,
    bannerAt,
    async metrics() {
      return parseMetrics(await metricsText());
    },
    metricsText,
    get inspectorUrl() {
      return inspectorUrls[0];
    },
    get inspectorUrls() {
      return [...inspectorUrls];
    },
    async collectGarbage() {
      if (inspectorUrls.length === 0) throw new Error('the hub was not started with inspector: true (or its inspector URL was not seen)');
      // A worker restarted meanwhile left a URL nobody answers: the others still get theirs.
      const results = await Promise.allSettled(inspectorUrls.map((url) => collectGarbage(url)));
      if (results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
    },
    processes,
    exitStatus() {
      return child.signalCode ?? (child.exitCode === null ? undefined : String(child.exitCode));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        // The hub bounds its own shutdown (PULSEWIRE_SHUTDOWN_TIMEOUT_MS, 10 s by default, then exit 1);
        // SIGKILL only if its event loop cannot even run that deadline.
        const timer = setTimeout(() => {
          // Its managed influxd (and a primary's nats-server and workers) would outlive it (no exit hook runs on SIGKILL).
          const { workers, natsServer, influxd } = processes();
          child.kill('SIGKILL');
          for (const pid of [...workers, natsServer, influxd]) if (pid) process.kill(pid, 'SIGKILL');
        }, 30_000);
        await exited;
        clearTimeout(timer);
      }
      removeDir();
    },
  };
}

/** Readings stored in InfluxDB under names `${prefix}N` (one prefix per bench phase). */
export async function countStored(databaseUrl: string, prefix: string): Promise<number> {
  const conn = connectInflux(databaseUrl, { requestTimeoutMs: 120_000 });
  const rows = await conn.influx.query<{ count: number }>(`SELECT count("value") FROM "telemetry" WHERE "name" =~ /^${prefix}[0-9]+$/`);
  return Number(rows[0]?.count ?? 0);
}

/**
 * Readings of devices `${prefix}*` in the hub's InfluxDB. device-sim's mixed profiles send numbers and
 * strings (fields value and text), so count(*) gives one column per field; each point has exactly one.
 * A soak stores tens of millions of points: the timeout is long.
 */
export async function countDeviceReadings(databaseUrl: string, prefix: string, timeoutMs = 120_000): Promise<number> {
  const conn = connectInflux(databaseUrl, { requestTimeoutMs: timeoutMs });
  const rows = await conn.influx.query<Record<string, unknown>>(`SELECT count(*) FROM "telemetry" WHERE "device" =~ /^${prefix}/`);
  const row = rows[0] ?? {};
  return Object.entries(row).filter(([k]) => k.startsWith('count_')).reduce((n, [, v]) => n + Number(v ?? 0), 0);
}

/**
 * Samples the hub's metrics until stopped: the spool's depth and InfluxDB's
 * confirmations over time, and how long each scrape took (the hub answers
 * HTTP on the same event loop as device sockets, so a slow scrape means a
 * long queue in that loop).
 */
export class MetricsSampler {
  readonly samples: Array<{ at: number; spoolEntries: number; spoolReadings: number; spoolBytes: number; pointsWritten: number; scrapeMs: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  constructor(private readonly hub: HubProcess, everyMs = 1000) {
    this.#timer = setInterval(() => void this.sample(), everyMs);
  }

  async sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const started = Date.now();
      const m = await this.hub.metrics();
      this.samples.push({
        at: Date.now(),
        scrapeMs: Date.now() - started,
        spoolEntries: m.get('pulsewire_spool_entries') ?? 0,
        spoolReadings: m.get('pulsewire_spool_readings') ?? 0,
        spoolBytes: m.get('pulsewire_spool_bytes') ?? 0,
        pointsWritten: m.get('pulsewire_points_written_total') ?? 0,
      });
    } catch {
      // a scrape that fails (hub busy) is a gap, not an error
    } finally {
      this.#busy = false;
    }
  }

  peak(key: 'spoolEntries' | 'spoolReadings' | 'spoolBytes' | 'scrapeMs', from = 0, to = Infinity): number {
    return this.samples.filter((s) => s.at >= from && s.at <= to).reduce((max, s) => Math.max(max, s[key]), 0);
  }

  /** The median of a sampled value within [from, to]. */
  median(key: 'scrapeMs', from = 0, to = Infinity): number {
    const values = this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s[key]).sort((a, b) => a - b);
    return values.length === 0 ? NaN : values[Math.floor(values.length / 2)]!;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export type OfflineDeviceView = { id: string; online: boolean; connectedAt: string | null; offlineReason: string | null };

/** Every device `${prefix}*` the hub's operator API lists offline, page by page (liveness, soak). */
export async function listOfflineDevices(baseUrl: string, prefix: string): Promise<OfflineDeviceView[]> {
  const out: OfflineDeviceView[] = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ online: 'false', prefix, limit: '1000', ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${baseUrl}/v1/devices?${q}`, { headers: { authorization: `Bearer ${BENCH_OPERATOR_TOKEN}` } });
    if (!res.ok) throw new Error(`GET /v1/devices: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { devices: OfflineDeviceView[]; nextCursor: string | null };
    out.push(...page.devices);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}
