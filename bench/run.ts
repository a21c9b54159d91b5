/**
 * The benchmark suite (issue 4): `npm run bench` runs every scenario,
 * `npm run bench -- ingest` one, `npm run bench -- ingest --seconds 20` a
 * shorter one. Each scenario is bounded in time, prints its tables, writes
 * its full result to bench/results/<scenario>-<timestamp>.json and replaces
 * its own section of BENCHMARKS.md. Expects a built hub (the npm script
 * builds first). Loopback only.
 */
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.js';
import { parseEnvList } from './lib/hub-process.js';
import { summaryMarkdown, textTable, writeResultJson, writeSection, type Table, type Target } from './lib/report.js';
import { runIngest } from './scenarios/ingest.js';
import { INGEST_NOTES, ingestMarkdown, ingestTables } from './scenarios/ingest-report.js';
import { runOutage } from './scenarios/outage.js';
import { OUTAGE_NOTES, outageMarkdown, outageTables } from './scenarios/outage-report.js';
import { runConnections } from './scenarios/connections.js';
import { CONNECTIONS_NOTES, connectionsMarkdown, connectionsTables } from './scenarios/connections-report.js';
import { runLiveness } from './scenarios/liveness.js';
import { LIVENESS_NOTES, livenessMarkdown, livenessTables } from './scenarios/liveness-report.js';
import { runLatency } from './scenarios/latency.js';
import { LATENCY_NOTES, latencyMarkdown, latencyTables } from './scenarios/latency-report.js';
import { runStorm } from './scenarios/storm.js';
import { STORM_NOTES, stormMarkdown, stormTables } from './scenarios/storm-report.js';
import { DASHBOARD_NOTES, dashboardMarkdown, dashboardTables, runDashboard } from './scenarios/dashboard.js';
import { runCommands } from './scenarios/commands.js';
import { COMMANDS_NOTES, commandsMarkdown, commandsTables } from './scenarios/commands-report.js';
import { FLEET_PAGE_NOTES, fleetPageMarkdown, fleetPageTables, runFleetPage } from './scenarios/fleet-page.js';
import { runCluster } from './scenarios/cluster.js';
import { CLUSTER_NOTES, clusterMarkdown, clusterTables } from './scenarios/cluster-report.js';
import { runSoak } from './scenarios/soak.js';
import { SOAK_NOTES, soakMarkdown, soakTables } from './scenarios/soak-report.js';
import { runWebhooks } from './scenarios/webhooks.js';
import { WEBHOOKS_NOTES, webhooksMarkdown, webhooksTables } from './scenarios/webhooks-report.js';

const USAGE = `usage: npm run bench -- [ingest] [latency] [connections] [liveness] [storm] [outage] [dashboard] [commands] [fleet-page] [cluster] [soak] [webhooks] [options]   (no scenario: all)

  --seconds S          ingest: each batch-load phase (default 60)
  --single-seconds S   ingest: each one-record phase (default 20)
  --peer-seconds S     ingest: the Node-RED peer's load (default 30)
  --devices N          devices (default 1000)
  --batch N            records per message (default 10)
  --rate R             outage: offered readings per second (default 20000)
  --outage-seconds S   outage: how long InfluxDB is down (default 30)
  --before S           outage: steady load before the outage (default 20)
  --after S            outage: load after InfluxDB is back (default 60)
  --steps N,N,...      connections: device counts (default 2500,5000,10000,19500,50000); a step over one process's
                       open-files cap (19,500 here) runs a hub of workers, a fleet of several device-sim processes
                       and as many bare ws processes as the hub has workers
  --workers N          connections, liveness, storm: hub workers for a fleet over one process's cap (default the
                       fewest that hold it: 3 for 50,000 here; 1: cut the fleet to the cap)
  --workers N,N,...    ingest: the workers phase's configurations, the first the baseline (default 1,2; 1 is one process)
  --workers-seconds S  ingest: each workers-phase run (default 30); --workers-rounds N (default 3)
  --ramp R             connections, liveness, storm: new connections per second (default 2000; connections' step on a
                       hub of workers 1000 and a ping every 25 s, unless --ramp or --ping-interval is given)
  --ping-interval MS   connections, liveness: the hub's ping interval (default 5000)
  --zombies PCT        liveness: percent zombies (default 5); --devices sets N (default 19000; 50000: a hub of workers)
                       storm: --devices sets N (default 19000; more than one process holds: a hub of workers)
  --env K=V,K2=V2      storm: more environment for the hub (e.g. PULSEWIRE_ACCEPT_RATE=500), recorded in its section
  --step-seconds S     latency: each rate step (default 20)
  --half-rounds N      latency: rounds of the hub at 50% of its maximum, the step included (default 3); the target holds for each
  --no-pin             do not pin processes to cores with taskset
  dashboard: --seconds S per phase (default 10; 3 rounds), --rate R readings/s (default 10000), --devices N (default 100)
  commands: --devices N (default 10000), --rates R,R,... commands/s (default 100,1000), --seconds S per phase (default 20),
            --rounds N of hub and relay phases at every rate (default 3), --result-delay MS before each RESULT (default 0)
  fleet-page: --devices N on the page (default 10000), --rounds R readings per device in the burst (default 3)
  cluster:  --configs K,K,... of 1 (one node, no NATS), 1+nats, 2, 3 nodes (default all four), --rounds N (default 3),
            --devices N held per configuration (default 2000), --seconds S of saturating ingest per phase (default 15),
            --rate R commands/s through node 1 (default 100)
  soak:     --minutes M of load at half the probed ingest maximum (default 30), --devices N (default 1000),
            --flap PCT flapping devices (default 5), --zombies PCT (default 1), --ping-interval MS (default 25000, the hub's)
  webhooks: --endpoints N receivers (default 10), --burst N connect/disconnect cycles delivered (default 1000),
            --devices N saturating ingest (default 1000), --seconds S per ingest phase (default 20), --rounds N of
            webhooks off and on (default 2), --rate R flap cycles/s during the ingest phases (default 50)
`;

const SCENARIOS = ['ingest', 'latency', 'connections', 'liveness', 'storm', 'outage', 'dashboard', 'commands', 'fleet-page', 'cluster', 'soak', 'webhooks'] as const;
type Scenario = (typeof SCENARIOS)[number];

/** A scenario as the command line sees it: run it, then print and record what it measured. */
type Definition<R extends { targets: Target[] }> = {
  run: () => Promise<R>;
  tables: (r: R) => Table[];
  markdown: (r: R, command: string, jsonFile: string, notes: string[]) => string;
  notes: string[];
};
const define = <R extends { targets: Target[] }>(d: Definition<R>) => d as unknown as Definition<{ targets: Target[] }>;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string' }, 'single-seconds': { type: 'string' }, 'peer-seconds': { type: 'string' }, devices: { type: 'string' }, batch: { type: 'string' },
      rate: { type: 'string' }, 'outage-seconds': { type: 'string' }, before: { type: 'string' }, after: { type: 'string' },
      steps: { type: 'string' }, 'step-seconds': { type: 'string' }, 'half-rounds': { type: 'string' }, 'ping-interval': { type: 'string' }, zombies: { type: 'string' },
      rates: { type: 'string' }, rounds: { type: 'string' }, 'result-delay': { type: 'string' }, configs: { type: 'string' },
      minutes: { type: 'string' }, flap: { type: 'string' }, env: { type: 'string' }, endpoints: { type: 'string' }, burst: { type: 'string' },
      workers: { type: 'string' }, 'workers-seconds': { type: 'string' }, 'workers-rounds': { type: 'string' }, ramp: { type: 'string' },
      'no-pin': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(USAGE);
  const unknown = positionals.filter((p) => !(SCENARIOS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}\n${USAGE}`);
  const all = positionals.length === 0;
  const chosen = (all ? SCENARIOS : positionals) as Scenario[];
  const num = (name: keyof typeof values): number | undefined => {
    const raw = values[name];
    if (raw === undefined || typeof raw === 'boolean') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`);
    return n;
  };
  const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const log = (line: string) => console.log(line);
  const pin = values['no-pin'] ? false : undefined;
  const common = defined({ devices: num('devices'), batch: num('batch'), pin, log });
  const positiveList = (name: 'steps' | 'rates' | 'workers'): number[] | undefined => {
    const list = values[name]?.split(',').map((x) => Number(x.trim()));
    if (list && list.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--${name} must be positive integers, got "${values[name]}"`);
    return list;
  };
  const steps = positiveList('steps');
  const workersList = positiveList('workers');
  // connections, liveness, storm take one count; ingest a list of configurations.
  if (workersList && workersList.length > 1 && chosen.some((c) => c === 'connections' || c === 'liveness' || c === 'storm')) {
    throw new Error('--workers takes one number for connections, liveness and storm (a list is for ingest alone)');
  }
  const workers = workersList?.[0];
  if (values.env !== undefined && chosen.some((c) => c !== 'storm')) {
    throw new Error(`--env is for storm alone (the hub's environment of its restart); not for ${chosen.filter((c) => c !== 'storm').join(', ')}`);
  }
  const ramp = num('ramp');
  const args = process.argv.slice(2).join(' ');
  const command = args ? `npm run bench -- ${args}` : 'npm run bench';

  const definitions: Record<Scenario, Definition<{ targets: Target[] }>> = {
    ingest: define({
      run: () => runIngest({ ...common, ...defined({ seconds: num('seconds'), singleSeconds: num('single-seconds'), peerSeconds: num('peer-seconds'), workers: workersList, workersSeconds: num('workers-seconds'), workersRounds: num('workers-rounds') }) }),
      tables: ingestTables, markdown: ingestMarkdown, notes: INGEST_NOTES,
    }),
    outage: define({
      run: () => runOutage({ ...common, ...defined({ readingsPerSecond: num('rate'), outageS: num('outage-seconds'), beforeS: num('before'), afterS: num('after') }) }),
      tables: outageTables, markdown: outageMarkdown, notes: OUTAGE_NOTES,
    }),
    connections: define({
      // Given on the command line, the ping interval and ramp hold for every step, those of a hub of workers too.
      run: () => runConnections(defined({ pin, log, steps, pingIntervalMs: num('ping-interval'), workersPingIntervalMs: num('ping-interval'), workers, ramp, workersRamp: ramp })),
      tables: connectionsTables, markdown: connectionsMarkdown, notes: CONNECTIONS_NOTES,
    }),
    liveness: define({
      run: () => runLiveness(defined({ pin, log, devices: num('devices'), zombiesPct: num('zombies'), pingIntervalMs: num('ping-interval'), workers, ramp })),
      tables: livenessTables, markdown: livenessMarkdown, notes: LIVENESS_NOTES,
    }),
    latency: define({
      run: () => runLatency({ ...common, ...defined({ stepSeconds: num('step-seconds'), halfRounds: num('half-rounds') }) }),
      tables: latencyTables, markdown: latencyMarkdown, notes: LATENCY_NOTES,
    }),
    storm: define({
      run: () => runStorm(defined({ pin, log, devices: num('devices'), workers, ramp, hubEnv: values.env === undefined ? undefined : parseEnvList(values.env) })),
      tables: stormTables, markdown: stormMarkdown, notes: STORM_NOTES,
    }),
    dashboard: define({
      run: () => runDashboard(defined({ pin, log, seconds: num('seconds'), readingsPerSecond: num('rate'), devices: num('devices') })),
      tables: dashboardTables, markdown: dashboardMarkdown, notes: DASHBOARD_NOTES,
    }),
    commands: define({
      run: () => runCommands(defined({ pin, log, devices: num('devices'), rates: positiveList('rates'), rounds: num('rounds'), phaseSeconds: num('seconds'), resultDelayMs: num('result-delay') })),
      tables: commandsTables, markdown: commandsMarkdown, notes: COMMANDS_NOTES,
    }),
    'fleet-page': define({
      run: () => runFleetPage(defined({ log, devices: num('devices'), rounds: num('rounds') })),
      tables: fleetPageTables, markdown: fleetPageMarkdown, notes: FLEET_PAGE_NOTES,
    }),
    cluster: define({
      run: () => runCluster(defined({ pin, log, devices: num('devices'), rounds: num('rounds'), ingestSeconds: num('seconds'), commandsPerSecond: num('rate'), configurations: values.configs?.split(',').map((k) => k.trim()) })),
      tables: clusterTables, markdown: clusterMarkdown, notes: CLUSTER_NOTES,
    }),
    soak: define({
      run: () => runSoak(defined({ pin, log, minutes: num('minutes'), devices: num('devices'), flapPct: num('flap'), zombiesPct: num('zombies'), pingIntervalMs: num('ping-interval') })),
      tables: soakTables, markdown: soakMarkdown, notes: SOAK_NOTES,
    }),
    webhooks: define({
      run: () => runWebhooks(defined({ pin, log, endpoints: num('endpoints'), burst: num('burst'), devices: num('devices'), seconds: num('seconds'), rounds: num('rounds'), flapPerSecond: num('rate') })),
      tables: webhooksTables, markdown: webhooksMarkdown, notes: WEBHOOKS_NOTES,
    }),
  };

  const started = describeMachine();
  const summary: Array<{ scenario: string; targets: Target[]; jsonFile: string }> = [];
  for (const scenario of chosen) {
    const d = definitions[scenario];
    const result = await d.run();
    for (const t of d.tables(result)) console.log(`\n${textTable(t)}`);
    const file = writeResultJson(scenario, result);
    writeSection(scenario, d.markdown(result, all ? `${command} (all scenarios)` : command, file, d.notes));
    console.log(`\nwrote ${file} and the ${scenario} section of BENCHMARKS.md`);
    summary.push({ scenario, targets: result.targets, jsonFile: file });
  }
  if (all) {
    writeSection('summary', summaryMarkdown(started, describeMachine().date, command, summary));
    console.log('wrote the summary section of BENCHMARKS.md');
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
