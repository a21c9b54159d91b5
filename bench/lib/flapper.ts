/**
 * Devices that connect and disconnect in a loop: each cycle is one
 * `device.online` and one `device.offline` on the hub's bus, the events the
 * webhooks scenario delivers. Loop j always uses device `${prefix}${j}`, so
 * no two connections of one device overlap (which would be a takeover).
 * Paced at `cyclesPerSecond` fleet-wide, or as fast as the loops go.
 */
import WebSocket from 'ws';
import { deriveEnrollmentSecret } from '../../src/registry/secrets.js';
import { SUBPROTOCOL } from '../../src/protocol/messages.js';

export type Flapping = {
  readonly cycles: number;
  readonly failures: number;
  /** Resolves once every loop ended (with `totalCycles`, when they were all run). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
};

export function flap(o: { url: string; enrollmentKey: string; prefix: string; loops: number; cyclesPerSecond?: number; totalCycles?: number }): Flapping {
  let cycles = 0;
  let failures = 0;
  let started = 0;
  let stopped = false;
  const t0 = performance.now();
  const due = () => (o.cyclesPerSecond === undefined ? Infinity : Math.floor(((performance.now() - t0) / 1000) * o.cyclesPerSecond));
  const loop = async (j: number) => {
    const id = `${o.prefix}${j}`;
    const authorization = `Basic ${Buffer.from(`${id}:${deriveEnrollmentSecret(o.enrollmentKey, id)}`).toString('base64')}`;
    while (!stopped && (o.totalCycles === undefined || started < o.totalCycles)) {
      if (started >= due()) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      started++;
      const ok = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(o.url, [SUBPROTOCOL], { headers: { authorization } });
        let opened = false;
        ws.once('open', () => {
          opened = true;
          ws.close(1000);
        });
        // Opened is what counts: the hub then had the device online, and offline once the socket closed.
        ws.once('close', () => resolve(opened));
        ws.once('error', () => resolve(false));
      });
      if (ok) cycles++;
      else failures++;
    }
  };
  const loops = Array.from({ length: o.loops }, (_, j) => loop(j));
  const done = Promise.all(loops).then(() => undefined);
  return {
    done,
    get cycles() { return cycles; },
    get failures() { return failures; },
    async stop() {
      stopped = true;
      await done;
    },
  };
}
