/**
 * The benchmark suite (issue 4): `npm run bench` runs every scenario,
 * `npm run bench -- ingest` one, `npm run bench -- ingest --seconds 20` a
 * shorter one. Each scenario is bounded in time, prints its tables, writes
 * its full result to bench/results/<scenario>-<timestamp>.json and replaces
 * its own section of BENCHMARKS.md. Expects a built hub (the npm script
 * builds first). Loopback only.
 */
import { parseArgs } from 'node:util';
import { textTable, writeResultJson, writeSection } from './lib/report.js';
import { runIngest } from './scenarios/ingest.js';
import { ingestMarkdown, ingestTables } from './scenarios/ingest-report.js';
import { runOutage } from './scenarios/outage.js';
import { outageMarkdown, outageTables } from './scenarios/outage-report.js';
import { runConnections } from './scenarios/connections.js';
import { connectionsMarkdown, connectionsTables } from './scenarios/connections-report.js';
import { runLiveness } from './scenarios/liveness.js';
import { livenessMarkdown, livenessTables } from './scenarios/liveness-report.js';
import { DASHBOARD_NOTES, dashboardMarkdown, dashboardTables, runDashboard } from './scenarios/dashboard.js';

const USAGE = `usage: npm run bench -- [ingest] [outage] [connections] [liveness] [dashboard] [options]   (no scenario: all)

  --seconds S          ingest: each batch-load phase (default 60)
  --single-seconds S   ingest: each one-record phase (default 20)
  --devices N          devices (default 1000)
  --batch N            records per message (default 10)
  --rate R             outage: offered readings per second (default 20000)
  --outage-seconds S   outage: how long InfluxDB is down (default 30)
  --before S           outage: steady load before the outage (default 20)
  --after S            outage: load after InfluxDB is back (default 60)
  --steps N,N,...      connections: device counts (default 2500,5000,10000,19500; cut to the open-files cap)
  --ping-interval MS   connections, liveness: the hub's ping interval (default 5000)
  --zombies PCT        liveness: percent zombies (default 5); --devices sets N (default 19000)
  --no-pin             do not pin processes to cores with taskset
  dashboard: --seconds S per phase (default 10; 3 rounds), --rate R readings/s (default 10000), --devices N (default 100)
`;

const SCENARIOS = ['ingest', 'outage', 'connections', 'liveness', 'dashboard'] as const;
type Scenario = (typeof SCENARIOS)[number];

const INGEST_NOTES = [
  'How: the hub is `node dist/src/main.js` as its own process with its managed influxd and a fresh data dir. The load is',
  'bench/lib/driver.ts, a purpose-built closed-loop driver in its own process (device-sim refills windows only on its',
  '100 ms tick and caps a device at 100 messages/s, so it cannot show a maximum): each device keeps 32 TELEMETRY',
  'messages in flight and sends the next on each ACK; frames are the hub\'s own encoding, patched per message. An ACK',
  'means "in the lmdb spool"; the hub then drains the spool into InfluxDB, so "readings/s ACKed" and "points/s into',
  'InfluxDB" (points InfluxDB confirmed, from load start until the spool was empty) are both given; the second is the',
  'rate the hub sustains end to end (while the ACK rate exceeds it, the spool grows: "spool full after" says how long the',
  'default 1 GiB bound lasts at that growth, after which devices get ACK 4). CPU-s / M readings is the measured process\'s utime+stime (/proc) from load start',
  'until its work was done (for the hub: spool drained), per million readings ACKed. "driver CPU" near 100% means the',
  'load generator, not the measured process, was the limit (a ceiling figure marked ">=" is then a lower bound). Ceiling A answers each frame with the same ACK the hub',
  'sends (the driver waits for ACKs) but does no auth, validation, storage. Ceiling B is node-influx configured as the',
  'hub configures it, writing the same points (schema.ts readingPoints) in requests of 5,000 with 2 concurrent, into a',
  'fresh influxd of the same version, for the same duration. The Node-RED peer of issue 4 is not measured yet (later work).',
];

const OUTAGE_NOTES = [
  'How: the bench runs influxd itself (startManagedInfluxd) and points the hub (built dist, own process) at it with',
  'PULSEWIRE_INFLUX_URL, since a managed influxd would be restarted by the hub at once. The outage is a clean stop of',
  'that influxd; the recovery is a new influxd on the same data dir and HTTP port. The driver sends at a fixed',
  'fleet-wide rate (window 32 per device) throughout. Spool depth and InfluxDB confirmations come from the hub\'s',
  '/metrics, sampled every 250 ms; "normal" is points/s into InfluxDB over the second half of the steady phase, that',
  'is the offered load. Catch-up includes the new load arriving meanwhile; net drain is the backlog at recovery over',
  'the time to empty. Loss is counted in InfluxDB after the spool drained.',
];

const CONNECTIONS_NOTES = [
  'How: for each step a fresh hub (built dist, own process, managed influxd, PULSEWIRE_PING_INTERVAL_MS as given) and then a',
  'fresh bare `ws` server (bench/servers/bare-ws.ts: same loopback port setup and path, one ping sweep per interval, ACKs',
  'each TELEMETRY, nothing else) each hold the same device-sim fleet (bench/lib/fleet-worker.ts, own process, ramp 2,000/s,',
  'one message of 4 records per device per 10 s, no reconnects). RSS is VmRSS from /proc/PID/status: "idle" is the median',
  'of 3 samples before any device connects, "held" the median of samples every 0.5 s after a settle period; KiB/conn =',
  '(held - idle) / devices held, so it includes everything a device costs the process (socket, session, registry entry,',
  'runtime, lmdb pages touched), not only the socket. No forced GC (not possible from outside): RSS includes garbage not',
  'yet collected, for both processes alike. CPU % is utime+stime over the measuring window (two ping sweeps and the',
  'telemetry), peak the highest 0.5 s bin. Loss is from device-sim\'s summary (sent = stored by ACK, none unACKed).',
];

const LIVENESS_NOTES = [
  'How: one hub (built dist, managed influxd, PULSEWIRE_PING_INTERVAL_MS as given) and one device-sim fleet in its own',
  'process with the `zombies` option (zombie sockets have autoPong off: they never answer a ping but keep TCP open and keep',
  'sending TELEMETRY, which the hub does not count as a sign of life). A zombie\'s last sign of life is its connection, so',
  'each time is measured from it: on the device side from the socket\'s open to its drop by the hub (20 ms polls), on the hub',
  'side from the device\'s connectedAt to the first operator-API poll (`GET /v1/devices?online=false`, every 250 ms, all',
  'pages) listing it offline with reason ping-timeout. Devices do not reconnect during the run. The hub\'s sweep (one timer',
  'for all sockets) pings at each interval and drops sockets that did not answer the previous ping, so a zombie goes',
  'between one and two intervals after its connection, plus the time a sweep takes.',
];

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string' }, 'single-seconds': { type: 'string' }, devices: { type: 'string' }, batch: { type: 'string' },
      rate: { type: 'string' }, 'outage-seconds': { type: 'string' }, before: { type: 'string' }, after: { type: 'string' },
      steps: { type: 'string' }, 'ping-interval': { type: 'string' }, zombies: { type: 'string' },
      'no-pin': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(USAGE);
  const unknown = positionals.filter((p) => !(SCENARIOS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}\n${USAGE}`);
  const chosen = (positionals.length > 0 ? positionals : SCENARIOS) as Scenario[];
  const num = (name: keyof typeof values): number | undefined => {
    const raw = values[name];
    if (raw === undefined || typeof raw === 'boolean') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`);
    return n;
  };
  const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const common = defined({ devices: num('devices'), batch: num('batch'), pin: values['no-pin'] ? false : undefined, log: (line: string) => console.log(line) });
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();

  for (const scenario of chosen) {
    if (scenario === 'ingest') {
      const result = await runIngest({ ...common, ...defined({ seconds: num('seconds'), singleSeconds: num('single-seconds') }) });
      for (const t of ingestTables(result)) console.log(`\n${textTable(t)}`);
      const file = writeResultJson('ingest', result);
      writeSection('ingest', ingestMarkdown(result, positionals.length > 0 ? command : `${command} (all scenarios)`, file, INGEST_NOTES));
      console.log(`\nwrote ${file} and the ingest section of BENCHMARKS.md`);
    } else if (scenario === 'connections') {
      const steps = values.steps?.split(',').map((x) => Number(x.trim()));
      if (steps && steps.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--steps must be positive integers, got "${values.steps}"`);
      const result = await runConnections({ ...defined({ pin: common.pin, log: common.log, steps, pingIntervalMs: num('ping-interval') }) });
      for (const t of connectionsTables(result)) console.log(`\n${textTable(t)}`);
      const file = writeResultJson('connections', result);
      writeSection('connections', connectionsMarkdown(result, positionals.length > 0 ? command : `${command} (all scenarios)`, file, CONNECTIONS_NOTES));
      console.log(`\nwrote ${file} and the connections section of BENCHMARKS.md`);
    } else if (scenario === 'dashboard') {
      const result = await runDashboard({ ...defined({ pin: common.pin, log: common.log, seconds: num('seconds'), readingsPerSecond: num('rate'), devices: num('devices') }) });
      for (const t of dashboardTables(result)) console.log(`\n${textTable(t)}`);
      const file = writeResultJson('dashboard', result);
      writeSection('dashboard', dashboardMarkdown(result, positionals.length > 0 ? command : `${command} (all scenarios)`, file, DASHBOARD_NOTES));
      console.log(`\nwrote ${file} and the dashboard section of BENCHMARKS.md`);
    } else if (scenario === 'liveness') {
      const result = await runLiveness({ ...defined({ pin: common.pin, log: common.log, devices: num('devices'), zombiesPct: num('zombies'), pingIntervalMs: num('ping-interval') }) });
      for (const t of livenessTables(result)) console.log(`\n${textTable(t)}`);
      const file = writeResultJson('liveness', result);
      writeSection('liveness', livenessMarkdown(result, positionals.length > 0 ? command : `${command} (all scenarios)`, file, LIVENESS_NOTES));
      console.log(`\nwrote ${file} and the liveness section of BENCHMARKS.md`);
    } else {
      const result = await runOutage({ ...common, ...defined({ readingsPerSecond: num('rate'), outageS: num('outage-seconds'), beforeS: num('before'), afterS: num('after') }) });
      for (const t of outageTables(result)) console.log(`\n${textTable(t)}`);
      const file = writeResultJson('outage', result);
      writeSection('outage', outageMarkdown(result, positionals.length > 0 ? command : `${command} (all scenarios)`, file, OUTAGE_NOTES));
      console.log(`\nwrote ${file} and the outage section of BENCHMARKS.md`);
    }
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
