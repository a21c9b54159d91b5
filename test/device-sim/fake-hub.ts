/**
 * A scripted hub: a plain ws server that records every frame a device sends,
 * decoded with the hub's own codec, and lets the test answer as it likes.
 *
 * Why it remains: device-protocol.test.ts runs the simulator against the
 * real hub for everything the real hub does (COMMAND, DESIRED, ACK 2 and 4,
 * takeover with close 4000, close 1007). This one plays a hub that
 * misbehaves on purpose (an ACK for a seq never sent, frames that are no hub
 * message), which a correct hub cannot be made to do.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeDeviceFrame, encodeAck, SUBPROTOCOL, type DeviceMessage } from '../../src/protocol/index.js';

export type Received = { conn: number; bytes: Buffer; msg: DeviceMessage };

export class FakeHub {
  readonly received: Received[] = [];
  readonly connections: WebSocket[] = [];
  readonly closes: { conn: number; code: number }[] = [];
  readonly authorizations: (string | undefined)[] = [];
  /** Called for every TELEMETRY; by default answers ACK 0. */
  onTelemetry: (ws: WebSocket, seq: number, r: Received) => void = (ws, seq) => ws.send(encodeAck(seq));
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer) {
    this.#server = server;
    server.on('connection', (ws, req) => {
      const conn = this.connections.push(ws) - 1;
      this.authorizations.push(req.headers.authorization);
      ws.on('message', (data: Buffer) => {
        const msg = decodeDeviceFrame(data);
        if (msg instanceof Error) throw msg;
        const r = { conn, bytes: data, msg };
        this.received.push(r);
        if (msg.type === 1) this.onTelemetry(ws, msg.seq, r);
      });
      ws.on('close', (code) => this.closes.push({ conn, code }));
    });
  }

  static async start(): Promise<FakeHub> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(SUBPROTOCOL) ? SUBPROTOCOL : false) });
    await new Promise<void>((resolve) => server.once('listening', resolve));
    return new FakeHub(server);
  }

  get url(): string {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected address');
    return `ws://127.0.0.1:${address.port}/v1/device`;
  }

  of(type: DeviceMessage['type']): Received[] {
    return this.received.filter((r) => r.msg.type === type);
  }

  async close(): Promise<void> {
    for (const ws of this.connections) ws.terminate();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
