/**
 * Ceiling A: what a Node process on one core does with the same device load
 * when there is no hub behind the socket. A bare `ws` server that decodes each
 * CBOR frame with cbor-x, counts it and answers the ACK the driver waits for
 * (`[2, seq]`, the same two to six bytes the hub sends). No auth, no
 * validation, no SenML resolution, no spool, no InfluxDB.
 */
import { decode, encode } from 'cbor-x';
import { WebSocketServer } from 'ws';
import { SUBPROTOCOL } from '../../src/protocol/index.js';
import { serve } from '../lib/ipc.js';

export type CeilingACounts = { messages: number; readings: number; undecodable: number };

const counts: CeilingACounts = { messages: 0, readings: 0, undecodable: 0 };
let server: WebSocketServer | undefined;

function start(): Promise<{ port: number }> {
  return new Promise((resolve) => {
    server = new WebSocketServer({
      host: '127.0.0.1', port: 0, path: '/v1/device', perMessageDeflate: false, maxPayload: 65_536,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    }, () => resolve({ port: (server!.address() as { port: number }).port }));
    server.on('connection', (ws) => {
      ws.on('message', (data: Buffer) => {
        let msg: unknown;
        try {
          msg = decode(data);
        } catch {
          counts.undecodable++;
          return;
        }
        if (!Array.isArray(msg) || msg[0] !== 1) return;
        counts.messages++;
        counts.readings += Array.isArray(msg[2]) ? msg[2].length : 0;
        ws.send(encode([2, msg[1]]));
      });
    });
  });
}

serve({
  start,
  counts: () => counts,
  stop: () => new Promise<void>((resolve) => {
    for (const ws of server?.clients ?? []) ws.terminate();
    server?.close(() => resolve());
  }),
});
