/**
 * The README's main command (`npm run demo`): the hub on its embedded default
 * (a managed local influxd, lmdb state under ./data) and a simulated fleet of
 * 50 devices with mixed profiles and a few zombies, plus where to look.
 * Ctrl-C stops the fleet (with its summary), then the hub, then influxd.
 *
 * `npm run demo -- --workers N`: the hub as N worker processes sharing the
 * port (PULSEWIRE_WORKERS; the hub then also runs its own nats-server), and
 * the devices spread over them.
 *
 * Loopback only. The enrollment key is a fixed demo key: fine on 127.0.0.1,
 * never for a hub that others can reach.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, runFleet, withDefaults } from '../device-sim/index.js';

const DEMO_ENROLLMENT_KEY = 'pulsewire-demo-enrollment-key';
const dataDir = path.resolve(process.env.PULSEWIRE_DATA_DIR ?? './data');
// PULSEWIRE_PORT=0 lets the kernel pick a free port; the hub's banner says which (the tests use it).
const port = Number(process.env.PULSEWIRE_PORT ?? 8080);
const token = process.env.PULSEWIRE_OPERATOR_TOKEN ?? randomBytes(18).toString('base64url');
const devices = Number(process.env.DEMO_DEVICES ?? 50);
const { values: args } = parseArgs({ options: { workers: { type: 'string' } }, strict: true });
const workers = args.workers ?? process.env.PULSEWIRE_WORKERS ?? '1';
if (!/^(\d+|auto)$/.test(workers)) {
  process.stderr.write(`demo: --workers ${workers}: a whole number or auto\n`);
  process.exit(2);
}
/** http://127.0.0.1:PORT, once the hub's banner said where it listens. */
let base = '';

mkdirSync(dataDir, { recursive: true });
const hubLogPath = path.join(dataDir, 'demo-hub.log');
const hubLog = createWriteStream(hubLogPath, { flags: 'a' });

const hub = spawn(process.execPath, ['dist/src/main.js'], {
  env: {
    ...process.env,
    PULSEWIRE_HOST: '127.0.0.1',
    PULSEWIRE_PORT: String(port),
    PULSEWIRE_DATA_DIR: dataDir,
    PULSEWIRE_ENROLLMENT_KEY: DEMO_ENROLLMENT_KEY,
    PULSEWIRE_OPERATOR_TOKEN: token,
    // Short pings so the demo's zombies visibly go offline within half a minute.
    PULSEWIRE_PING_INTERVAL_MS: process.env.PULSEWIRE_PING_INTERVAL_MS ?? '10000',
    PULSEWIRE_WORKERS: workers,
  },
  // The IPC channel only tells the hub when the demo is gone (it then stops itself), so a
  // demo killed outright does not leave a hub holding the port and the data dir.
  stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  // Its own process group: Ctrl-C reaches the demo, which stops the fleet first and then the hub.
  detached: true,
});
let banner = '';
hub.stdout!.on('data', (chunk: Buffer) => { banner += chunk; hubLog.write(chunk); });
hub.stderr!.on('data', (chunk: Buffer) => { hubLog.write(chunk); process.stderr.write(chunk); });
const hubExited = new Promise<number | null>((resolve) => hub.once('exit', (code) => resolve(code)));

async function waitForHub(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (hub.exitCode !== null) throw new Error(`the hub exited with code ${hub.exitCode}; see ${hubLogPath}`);
    const listening = /Pulsewire hub on http:\/\/[^:\s]+:(\d+)/.exec(banner)?.[1];
    if (listening) base = `http://127.0.0.1:${listening}`;
    if (base && await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the hub was not ready within 60 s; see ${hubLogPath}`);
}

function whereToLook(): string {
  const influx = /InfluxDB:\s+(http:\/\/\S+)/.exec(banner)?.[1] ?? '(see the hub log)';
  const auth = `-H 'Authorization: Bearer ${token}'`;
  return [
    '',
    `Pulsewire demo: hub on ${base}${workers === '1' ? '' : ` (${workers} worker processes)`}, ${devices} simulated devices (mixed profiles, a few zombies)`,
    ...(workers === '1' ? [] : [`  which worker:    curl -s ${auth} '${base}/v1/devices?online=true&limit=1000' | grep -o '"node":"[^"]*"' | sort | uniq -c`]),
    '',
    `  devices online:  curl -s ${auth} '${base}/v1/devices?online=true&limit=5'`,
    `  one device:      curl -s ${auth} ${base}/v1/devices/sim-00001`,
    `  its history:     curl -s ${auth} '${base}/v1/devices/sim-00001/telemetry?name=sim-00001/temperature'`,
    `  a command:       curl -s ${auth} -H 'content-type: application/json' -d '{"name":"set_led","args":{"on":true}}' '${base}/v1/devices/sim-00001/commands?wait=10'`,
    `  desired state:   curl -s ${auth} -X PATCH -H 'content-type: application/merge-patch+json' -d '{"interval":5}' ${base}/v1/devices/sim-00001/desired`,
    `  its state:       curl -s ${auth} ${base}/v1/devices/sim-00001/state`,
    `  metrics:         curl -s ${auth} ${base}/metrics | grep ^pulsewire_`,
    `  API reference:   ${base}/openapi.json      readiness: ${base}/readyz`,
    `  InfluxDB:        ${influx}  database "pulsewire" (measurements telemetry, device_status, command)`,
    `  hub log:         ${hubLogPath}`,
    `  operator token:  ${token}`,
    `  dashboard:       ${base}/   (log in with the operator token)`,
    '',
    'Zombies stop answering pings and go offline with reason ping-timeout within 20 s. Ctrl-C stops everything.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  await waitForHub();
  process.stdout.write(whereToLook());
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  void hubExited.then(() => stop.abort());
  const summary = await runFleet(
    withDefaults({
      url: `${base.replace(/^http/, 'ws')}/v1/device`,
      enrollmentKey: DEMO_ENROLLMENT_KEY,
      devices,
      profile: 'mixed',
      rate: 0.5,
      batch: 4,
      ramp: 25,
      zombies: 6,
      status: 'auto',
    }),
    { signal: stop.signal },
  );
  process.stdout.write(`\n${formatSummary(summary)}\n`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  exitCode = 1;
} finally {
  if (hub.exitCode === null) {
    process.stdout.write('stopping the hub (devices get 1001, pending writes are flushed)...\n');
    hub.kill('SIGTERM');
  }
  const code = await hubExited;
  if (code !== 0 && exitCode === 0) exitCode = 1;
  process.stdout.write(`hub stopped (exit ${code}); data kept in ${dataDir}\n`);
  hubLog.end();
}
process.exit(exitCode);
