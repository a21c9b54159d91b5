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

const USAGE = `usage: npm run bench -- [ingest] [outage] [options]   (no scenario: all)

  --seconds S          ingest: each batch-load phase (default 60)
  --single-seconds S   ingest: each one-record phase (default 20)
  --devices N          devices (default 1000)
  --batch N            records per message (default 10)
  --rate R             outage: offered readings per second (default 20000)
  --outage-seconds S   outage: how long InfluxDB is down (default 30)
  --before S           outage: steady load before the outage (default 20)
  --after S            outage: load after InfluxDB is back (default 60)
  --no-pin             do not pin processes to cores with taskset
`;

const SCENARIOS = ['ingest', 'outage'] as const;
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

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string' }, 'single-seconds': { type: 'string' }, devices: { type: 'string' }, batch: { type: 'string' },
      rate: { type: 'string' }, 'outage-seconds': { type: 'string' }, before: { type: 'string' }, after: { type: 'string' },
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
