/**
 * The Node-RED peer of the ingest scenario: Node-RED (the node-red package,
 * run as its own process with `red.js`) with a flow that does the hub's job
 * the way a Node-RED user would build it:
 *
 *   websocket in (/v1/device) -> function (cbor-x decode, SenML base name and
 *   time, one point per record; answers [2, seq] through websocket out)
 *   -> influxdb batch (node-red-contrib-influxdb, InfluxDB 1.x, one write
 *   per message)
 *
 * cbor-x reaches the function node through functionGlobalContext (no
 * hand-written CBOR). The ACK goes back as soon as the message is decoded,
 * before the write: it lets the bench's closed-loop driver run unchanged,
 * but it means "received", not "stored" (Node-RED has no spool), so the
 * figures that count are what reaches InfluxDB and when. Node-RED runs as
 * bench/lib/node-red-process.ts starts it (temp dir, loopback, no editor).
 */
import { createRequire } from 'node:module';
import { startNodeRed } from '../lib/node-red-process.js';

const require = createRequire(import.meta.url);

export type NodeRedPeer = {
  pid: number;
  url: string;
  influxDatabase: string;
  /** Node-RED's `[error]` log lines so far, by message (digits folded), with counts: why writes failed. */
  errors(): Record<string, number>;
  stop(): Promise<void>;
};

/**
 * The function node's body. SenML in CBOR uses integer labels (RFC 8428
 * section 6): bn -2, bt -3, n 0, v 2, t 6. cbor-x gives a map with integer keys
 * as an object (keys "-3", "0", ...) or a Map; both are read.
 */
const FUNCTION_BODY = `
const cbor = global.get('cbor');
let m;
try { m = cbor.decode(msg.payload); } catch (err) { node.error(err, msg); return null; }
if (!Array.isArray(m) || m[0] !== 1 || !Array.isArray(m[2])) return null;
const get = (r, k) => (r instanceof Map ? r.get(k) : r[k]);
const device = msg._session.id;
let bn = '';
let bt = 0;
const points = [];
for (const r of m[2]) {
  const b = get(r, -2); if (typeof b === 'string') bn = b;
  const t0 = get(r, -3); if (typeof t0 === 'number') bt = t0;
  const v = get(r, 2);
  if (typeof v !== 'number') continue;
  const t = get(r, 6);
  points.push({ measurement: 'telemetry', tags: { device, name: bn + get(r, 0) }, fields: { value: v }, timestamp: new Date(Math.round((bt + (typeof t === 'number' ? t : 0)) * 1000)) });
}
return [{ payload: cbor.encode([2, m[1]]), _session: msg._session }, { payload: points }];
`;

function flow(influx: { host: string; port: number; database: string }): unknown[] {
  return [
    { id: 'peer-tab', type: 'tab', label: 'pulsewire peer' },
    { id: 'peer-listener', type: 'websocket-listener', path: '/v1/device', wholemsg: 'false' },
    { id: 'peer-in', type: 'websocket in', z: 'peer-tab', name: 'devices', server: 'peer-listener', client: '', wires: [['peer-decode']] },
    { id: 'peer-decode', type: 'function', z: 'peer-tab', name: 'CBOR SenML to points', func: FUNCTION_BODY, outputs: 2, noerr: 0, wires: [['peer-ack'], ['peer-write']] },
    { id: 'peer-ack', type: 'websocket out', z: 'peer-tab', name: 'ACK', server: 'peer-listener', client: '', wires: [] },
    { id: 'peer-influx', type: 'influxdb', hostname: influx.host, port: String(influx.port), protocol: 'http', database: influx.database, name: 'influxd', usetls: false, influxdbVersion: '1.x' },
    { id: 'peer-write', type: 'influxdb batch', z: 'peer-tab', influxdb: 'peer-influx', precision: 'ms', retentionPolicy: '', name: 'write', wires: [] },
  ];
}

/** Starts Node-RED with the peer flow, writing to `influxUrl` (an influxd root URL) database `database` (created here). */
export async function startNodeRedPeer(influxUrl: string, database = 'nodered'): Promise<NodeRedPeer> {
  const created = await fetch(`${influxUrl}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${database}"` }) });
  if (!created.ok) throw new Error(`CREATE DATABASE: ${created.status} ${await created.text()}`);
  const influx = new URL(influxUrl);
  const red = await startNodeRed({
    flow: flow({ host: influx.hostname, port: Number(influx.port), database }),
    dirPrefix: 'pulsewire-bench-node-red-',
    extraSettings: `functionGlobalContext: { cbor: require(${JSON.stringify(require.resolve('cbor-x'))}) },`,
  });
  return {
    pid: red.pid,
    url: `ws://127.0.0.1:${red.port}/v1/device`,
    influxDatabase: database,
    errors: red.errors,
    stop: red.stop,
  };
}
