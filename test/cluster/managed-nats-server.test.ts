import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startManagedNatsServer, type ManagedNatsServer } from '../../src/cluster/managed-nats-server.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Writes or reads one KV value over a fresh connection that does not reconnect. */
async function withKv<T>(url: string, use: (kv: Awaited<ReturnType<Kvm['create']>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    return await use(await new Kvm(jetstream(nc)).create('survives', { history: 1 }));
  } finally {
    await nc.close();
  }
}

describe('startManagedNatsServer', () => {
  let dataDir: string;
  let server: ManagedNatsServer | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-managed-nats-'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts on a loopback port with JetStream under the data dir, keeps its store across restarts, and stops', async () => {
    server = await startManagedNatsServer({ dataDir });
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.storeDir).toBe(path.join(dataDir, 'nats', 'jetstream'));
    const config = await readFile(path.join(dataDir, 'nats', 'nats-server.conf'), 'utf8');
    expect(config).toContain(`listen: "127.0.0.1:${server.port}"`);
    expect(config).toContain(`store_dir: ${JSON.stringify(server.storeDir)}`);
    await withKv(server.url, (kv) => kv.put('k', 'v1'));

    const firstPid = server.pid!;
    await server.restart();
    expect(server.pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
    expect(await withKv(server.url, async (kv) => (await kv.get('k'))?.string())).toBe('v1');

    // A killed process (SIGKILL) loses nothing acknowledged: JetStream has written it to the
    // file store (the OS's cache); only a machine crash could lose up to its 2-minute sync interval.
    await withKv(server.url, (kv) => kv.put('k', 'v2'));
    await server.restart({ signal: 'SIGKILL' });
    expect(await withKv(server.url, async (kv) => (await kv.get('k'))?.string())).toBe('v2');

    const lastPid = server.pid!;
    await server.stop();
    expect(alive(lastPid)).toBe(false);
    await expect(connect({ servers: server.url, reconnect: false, timeout: 1000 })).rejects.toThrow();
  });

  it('says how to install nats-server when it is missing', async () => {
    const error = await startManagedNatsServer({ dataDir, binaryPath: path.join(dataDir, 'no-such-nats-server') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PW_ERR_NATS_MISSING' });
    const missing = await startManagedNatsServer({ dataDir, binaryPath: '/nonexistent/nats-server' }).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/not executable/);
  });

  it('fails with the server\'s own words when its fixed port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const error = await startManagedNatsServer({ dataDir, port, readyTimeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'PW_ERR_NATS_UNAVAILABLE' });
      expect((error as Error).message).toMatch(/address already in use/);
    } finally {
      blocker.close();
    }
  });
});
