/**
 * stayDownAfterDrop (the bench's connections and liveness fleets): a failed
 * handshake is retried with the protocol's backoff, like firmware would, but
 * a connection that opened and was then dropped is not made again.
 */
import { afterEach, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { Fleet, withDefaults } from '../../device-sim/index.js';
import { SUBPROTOCOL } from '../../src/protocol/index.js';
import { sleep, waitFor } from '../support/wait.js';

let server: WebSocketServer | undefined;
let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.stop();
  await new Promise((resolve) => server?.close(resolve));
  fleet = server = undefined;
});


it('retries a refused handshake with backoff and stays down after a drop', async () => {
  const attempts = new Map<string, number>();
  const opened: WebSocket[] = [];
  server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (p) => (p.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    // Each device's first two handshakes are refused with 503, as an overloaded hub would.
    verifyClient: ({ req }, done) => {
      const key = req.headers.authorization ?? '';
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      done(n > 2, 503);
    },
  });
  await new Promise<void>((resolve) => server!.once('listening', resolve));
  server.on('connection', (ws) => opened.push(ws));
  const { port } = server.address() as { port: number };

  fleet = new Fleet({
    ...withDefaults({ url: `ws://127.0.0.1:${port}/v1/device`, devices: 5, enrollmentKey: 'k', rate: 0.1, ramp: 1_000, status: 'off' }),
    timing: { baseMs: 20, capMs: 50 },
    stayDownAfterDrop: true,
    warn: () => {},
  }).start();

  // A ceiling for a busy machine; the wait ends when all five are connected.
  await waitFor(() => fleet!.snapshot().connected === 5, { timeoutMs: 15_000, what: 'five connected' });
  expect(fleet.summary().connections.connectFailures).toEqual({ 'http 503': 10 });

  for (const ws of opened) ws.terminate();
  await sleep(500); // many backoff periods: a device that reconnected would have done so by now
  expect(fleet.snapshot()).toMatchObject({ connected: 0, connecting: 0, waiting: 0 });
  expect(opened).toHaveLength(5);
});
