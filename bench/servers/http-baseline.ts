/**
 * The baseline of the soak's and the storm's probes: a bare node:http server
 * answering every request with 200 at once, pinned to the hub's core. Probed
 * on the same schedule as the hub's /readyz, it shows what the machine alone
 * does to an answer's time (a core shared with neighbours, the scheduler), so
 * a slow /readyz can be told from a slow hub.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '../lib/ipc.js';

let server: http.Server | undefined;

async function start(): Promise<{ port: number }> {
  server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port };
}

serve({
  start,
  stop: () => new Promise<void>((resolve) => { server?.close(() => resolve()); server?.closeAllConnections(); }),
});
