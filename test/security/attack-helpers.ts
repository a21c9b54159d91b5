/**
 * What every attack test needs: a raw connection as an authenticated device,
 * and the check that the hub survived (a different, well-behaved device
 * connects, sends a reading and gets ACK 0).
 */
import { expect } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { TestDevice } from '../support/device-client.js';
import { basic } from '../support/http-device.js';
import { RawWebSocket } from '../support/raw-websocket.js';

let bystanders = 0;

/** Opens /v1/device on a bare socket with enrollment credentials; fails the test unless the answer is 101. */
export async function connectRawDevice(baseUrl: string, deviceId: string, extraHeaders: Record<string, string> = {}): Promise<RawWebSocket> {
  const { hostname, port } = new URL(baseUrl);
  const ws = await RawWebSocket.connect(hostname, Number(port), '/v1/device', {
    'Sec-WebSocket-Protocol': 'pulsewire.v1',
    Authorization: basic(deviceId),
    ...extraHeaders,
  });
  expect(ws.status, `upgrade of ${deviceId}`).toBe(101);
  return ws;
}

/** A TELEMETRY of one reading taken now (relative time 0). */
export function oneReading(seq: number, name = 'temp', value = 21.5): Uint8Array {
  return encodeTelemetry(seq, [senmlRecord({ n: name, v: value })]);
}

/** Asserts the hub still serves devices: a new one connects and gets ACK 0 for a reading. */
export async function expectHubServes(deviceUrl: string): Promise<void> {
  const device = await TestDevice.connect(deviceUrl, { id: `bystander-${process.pid}-${++bystanders}` });
  try {
    device.send(oneReading(1));
    expect(await device.next()).toEqual({ type: 2, seq: 1 });
  } finally {
    await device.close();
  }
}
