/**
 * The Node-RED path of the operator API: docs/node-red-flow.json, the flow
 * docs/node-red.md documents, run in real Node-RED 4 (its own process) against
 * a real hub and a real device that answers every COMMAND with RESULT
 * succeeded. Node-RED gets the hub's address, token and device id through its
 * environment, as a user sets them; the flow's injects fire once at start.
 *
 * The flow file is loaded unchanged. The test only adds probes: for every
 * debug node of the flow a `complete` node that writes what reached that
 * debug node, with its status code, as one JSON line to a file here.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeRed, type NodeRedProcess } from '../../bench/lib/node-red-process.js';
import { decodeHubFrame } from '../../src/protocol/codec.js';
import { encodeResult, encodeTelemetry } from '../../src/protocol/encode.js';
import type { CommandMessage, DesiredMessage, HubMessage } from '../../src/protocol/messages.js';
import { TestDevice } from '../support/device-client.js';
import { OPERATOR_TOKEN, startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

const FLOW_FILE = fileURLToPath(new URL('../../docs/node-red-flow.json', import.meta.url));
const DEVICE = 'nr-boiler-1';

type FlowNode = { id: string; type: string; z?: string };
type Probe = { node: string; statusCode?: unknown; payload: any };

/** The flow plus one probe per debug node: complete (scope: that node) -> change (what to record) -> one shared file node. */
function withProbes(flow: FlowNode[], file: string): unknown[] {
  const probes = flow.filter((n) => n.type === 'debug').flatMap((n) => [
    { id: `probe-${n.id}`, type: 'complete', z: n.z, scope: [n.id], uncaught: false, wires: [[`probe-${n.id}-record`]] },
    {
      id: `probe-${n.id}-record`, type: 'change', z: n.z,
      rules: [{ t: 'set', p: 'payload', pt: 'msg', to: `{"node": "${n.id}", "statusCode": statusCode, "payload": payload}`, tot: 'jsonata' }],
      wires: [['probe-file']],
    },
  ]);
  const fileNode = { id: 'probe-file', type: 'file', z: flow[0]!.id, filename: file, filenameType: 'str', appendNewline: true, createDir: true, overwriteFile: 'false', encoding: 'none', wires: [[]] };
  return [...flow, ...probes, fileNode];
}

/** CBOR maps arrive as Maps; the API's JSON has plain objects. */
function plain(value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

describe('Node-RED flow of docs/node-red.md', () => {
  let hub: TestHub;
  let device: TestDevice;
  let red: NodeRedProcess | undefined;
  let dir: string;
  const received: HubMessage[] = [];

  async function probes(): Promise<Probe[]> {
    const text = await readFile(path.join(dir, 'probes.jsonl'), 'utf8').catch(() => '');
    return text.split('\n').flatMap((line) => { try { return [JSON.parse(line) as Probe]; } catch { return []; } });
  }

  /** The first message that reached debug node `node` (and satisfies `match`), waiting for it. */
  async function probe(node: string, match: (p: Probe) => boolean = () => true, timeoutMs = 20_000): Promise<Probe> {
    try {
      return await until(async () => (await probes()).find((p) => p.node === node && match(p)), timeoutMs);
    } catch {
      throw new Error(`nothing reached ${node}; probes: ${JSON.stringify(await probes())}\nNode-RED log:\n${red?.log()}`);
    }
  }

  beforeAll(async () => {
    hub = await startHub();
    const secret = (await hub.api('PUT', `/v1/devices/${DEVICE}`)).body.secret as string;
    device = await TestDevice.connect(hub.deviceUrl, { id: DEVICE, secret });
    device.socket.on('message', (data) => {
      const message = decodeHubFrame(new Uint8Array(data as Buffer));
      if (message instanceof Error) return;
      received.push(message);
      if (message.type === 3) device.send(encodeResult(message.commandId, 1, new Map([['applied', true]])));
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-node-red-probes-'));
    const flow = JSON.parse(await readFile(FLOW_FILE, 'utf8')) as FlowNode[];
    red = await startNodeRed({
      flow: withProbes(flow, path.join(dir, 'probes.jsonl')),
      dirPrefix: 'pulsewire-node-red-',
      env: {
        PULSEWIRE_URL: hub.baseUrl,
        PULSEWIRE_LIVE_URL: `${hub.baseUrl.replace(/^http/, 'ws')}/v1/live`,
        PULSEWIRE_TOKEN: OPERATOR_TOKEN,
        PULSEWIRE_DEVICE: DEVICE,
      },
      startTimeoutMs: 60_000,
    });
  }, 90_000);

  afterAll(async () => {
    await red?.stop();
    await device?.close();
    await hub?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('sends the command, the device gets it, and the flow sees 200 succeeded in one call', async () => {
    const command = (await until(() => received.find((m) => m.type === 3), 20_000)) as CommandMessage;
    expect(command.name).toBe('set_interval');
    expect(plain(command.args)).toEqual({ seconds: 30 });
    const outcome = await probe('pw-command-succeeded');
    expect(outcome.statusCode).toBe(200);
    expect(outcome.payload).toMatchObject({ id: command.commandId, deviceId: DEVICE, name: 'set_interval', status: 'succeeded', result: { applied: true } });
    expect((await probes()).filter((p) => p.node === 'pw-command-refused' || p.node === 'pw-command-not-succeeded')).toEqual([]);
  });

  it('patches desired state, which reaches the device as DESIRED', async () => {
    const desired = (await until(() => received.find((m) => m.type === 6), 20_000)) as DesiredMessage;
    expect(plain(desired.state)).toEqual({ interval: 30 });
    const applied = await probe('pw-desired-applied');
    expect(applied.statusCode).toBe(200);
    expect(applied.payload).toMatchObject({ deviceId: DEVICE, desired: { interval: 30 }, version: desired.version });
  });

  it('reads the state', async () => {
    const state = await probe('pw-state');
    expect(state.statusCode).toBe(200);
    expect(state.payload).toMatchObject({ deviceId: DEVICE, version: expect.any(Number), reported: {}, desired: expect.any(Object) });
  });

  it('follows the live stream with the operator token: snapshot, then one message per reading', async () => {
    const snapshot = await probe('pw-live-snapshot');
    expect(snapshot.payload.devices).toContainEqual(expect.objectContaining({ device: DEVICE, online: true }));
    device.send(encodeTelemetry(1, [{ n: 'temp', u: 'Cel', v: 21.5 }]));
    const reading = await probe('pw-live-reading', (p) => p.payload?.device === DEVICE);
    expect(reading.payload).toMatchObject({ device: DEVICE, name: 'temp', unit: 'Cel', kind: 'value', v: 21.5 });
    expect(red!.errors()).toEqual({});
  });
});
