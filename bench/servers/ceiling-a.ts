/**
 * Ceiling A: what a Node process on one core does with the same device load
 * when there is no hub behind the socket. A bare `ws` server that decodes each
 * CBOR frame with cbor-x, counts it and answers the ACK the driver waits for
 * (`[2, seq]`, the same two to six bytes the hub sends). No auth, no
 * validation, no SenML resolution, no spool, no InfluxDB.
 */
import { decode, encode } from 'cbor-x';
import type { WebSocketServer } from 'ws';
import { closeListening, listenLikeHub } from './listen-like-hub.js';
import { serve } from '../lib/ipc.js';

export type CeilingACounts = { messages: number; readings: number; undecodable: number };

const counts: CeilingACounts = { messages: 0, readings: 0, undecodable: 0 };
let server: WebSocketServer | undefined;
let listening: Awaited<ReturnType<typeof listenLikeHub>> | undefined;

async function start(): Promise<{ port: number }> {
  listening = await listenLikeHub();
  server = listening.server;
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
  return { port: listening.port };
}

serve({
  start,
  counts: () => counts,
  stop: () => {
    for (const ws of server?.clients ?? []) ws.terminate();
    return closeListening(listening);
  },
});
