/**
 * Probe: the hub CPU one device upgrade costs while it only waits for its
 * turn (src/gateway/upgrade-gate.ts): the accept, the parse and the queue,
 * nothing of the admission itself. A reconnect storm's first seconds are
 * made of these; if the hub cannot take them off the kernel's accept queue
 * as fast as they come, health probes wait behind them. Baseline in the
 * same run: a bare node:http server holding the same upgrade requests.
 *
 * The hub runs with PULSEWIRE_ACCEPT_RATE=1 and one handshake at a time, so
 * every request but the first waits; N raw TCP clients each send a device
 * upgrade request with valid credentials; CPU is read from /proc, less the
 * hub's idle CPU over as long.
 *
 *   npx tsx bench/probes/upgrade-arrival.ts [--requests 3000]
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { BENCH_ENROLLMENT_KEY, startHubProcess } from '../lib/hub-process.js';
import { cpuSeconds, sleep } from '../lib/proc.js';

const { values } = parseArgs({ options: { requests: { type: 'string' } } });
const requests = Math.max(100, Number(values.requests ?? 3000));
const SETTLE_MS = 3000;

function upgradeRequest(host: string, path: string, id: string): string {
  const secret = createHmac('sha256', BENCH_ENROLLMENT_KEY).update(id).digest('hex');
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: pulsewire.v1\r\n'
    + `Authorization: Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}\r\n\r\n`;
}

/** Hub CPU-seconds for `requests` held upgrades, idle CPU over the same time taken out. */
async function measure(pid: number, port: number, path: string): Promise<number> {
  const idle0 = cpuSeconds(pid);
  const idleStart = performance.now();
  await sleep(SETTLE_MS);
  const idlePerMs = (cpuSeconds(pid) - idle0) / (performance.now() - idleStart);
  const sockets: net.Socket[] = [];
  const before = cpuSeconds(pid);
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    socket.write(upgradeRequest(`127.0.0.1:${port}`, path, `arrival-${i}`));
    sockets.push(socket);
    // In slices, so the clients' own connects do not swamp the listen queue.
    if (i % 200 === 199) await sleep(50);
  }
  await sleep(SETTLE_MS);
  const spent = cpuSeconds(pid) - before - idlePerMs * (performance.now() - started);
  for (const socket of sockets) socket.destroy();
  return spent;
}

const BARE = `
const http = require('node:http');
const held = [];
const server = http.createServer((req, res) => res.end('ok'));
server.on('upgrade', (req, socket) => { socket.on('error', () => {}); held.push(socket); });
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

const bare = spawn(process.execPath, ['-e', BARE], { stdio: ['ignore', 'pipe', 'inherit'] });
const barePort = await new Promise<number>((resolve) => bare.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
const bareCpu = await measure(bare.pid!, barePort, '/v1/device');
bare.kill();

const hub = await startHubProcess({ env: { PULSEWIRE_ACCEPT_RATE: '1', PULSEWIRE_MAX_HANDSHAKES: '1', PULSEWIRE_ADMISSION_QUEUE: String(requests * 2), PULSEWIRE_ADMISSION_WAIT_MS: '60000' } });
const url = new URL(hub.deviceUrl);
const hubCpu = await measure(hub.pid, Number(url.port), url.pathname);
const waiting = /pulsewire_device_handshakes_waiting (\d+)/.exec(await hub.metricsText())?.[1];
await hub.stop();

const us = (s: number) => ((s / requests) * 1e6).toFixed(0);
console.log(`${requests} upgrade requests held (hub: ${waiting} waiting at the end)`);
console.log(`bare node:http: ${us(bareCpu)} µs CPU each`);
console.log(`hub, waiting for its turn: ${us(hubCpu)} µs CPU each (${(hubCpu / bareCpu).toFixed(2)} x bare)`);
