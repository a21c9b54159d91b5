import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectInflux } from '../../src/storage/influx-connection.js';
import { startManagedInfluxd, type ManagedInfluxd } from '../../src/storage/managed-influxd.js';
import { waitFor } from '../support/wait.js';

async function pingStatus(url: string): Promise<number | undefined> {
  try {
    // Generous: a busy machine may answer late; an address where nothing listens is refused at once.
    const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(10_000) });
    return res.status;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startManagedInfluxd', () => {
  let dataDir: string;
  let influxd: ManagedInfluxd | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-managed-'));
  });
  afterAll(async () => {
    await influxd?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts on a free loopback port, restarts after SIGKILL keeping data, and stops', async () => {
    const errors: string[] = [];
    influxd = await startManagedInfluxd({
      dataDir,
      logger: { info: () => {}, warn: () => {}, error: (_obj, msg) => errors.push(msg ?? '') },
    });
    expect(influxd.url).toBe(`http://127.0.0.1:${influxd.httpPort}`);
    expect(await pingStatus(influxd.url)).toBe(204);
    const config = await readFile(path.join(dataDir, 'influxdb', 'influxdb.conf'), 'utf8');
    expect(config).toContain(`bind-address = "127.0.0.1:${influxd.httpPort}"`);
    expect(config).toMatch(/^bind-address = "127\.0\.0\.1:\d+"$/m);

    const connection = connectInflux(`${influxd.url}/survives`);
    await connection.ensureDatabase();
    await connection.influx.writePoints([{ measurement: 'm', fields: { v: 1.5 }, timestamp: '1000' }], { precision: 'u' });

    const firstPid = influxd.pid!;
    process.kill(firstPid, 'SIGKILL');
    await waitFor(() => influxd!.pid !== firstPid && influxd!.restarts === 1, { timeoutMs: 10_000, everyMs: 100 });
    await waitFor(async () => (await pingStatus(influxd!.url)) === 204, { timeoutMs: 20_000, everyMs: 100 });
    expect(errors).toContain('managed influxd died unexpectedly; restarting');
    // The WAL is replayed on restart: an acknowledged write outlives a crash.
    const rows = await connection.influx.query<{ v: number }>('SELECT v FROM m');
    expect(rows.map((r) => r.v)).toEqual([1.5]);

    const secondPid = influxd.pid!;
    await influxd.stop();
    // By its process, not its port: once freed, the port may be another worker's server.
    expect(alive(secondPid)).toBe(false);
    // Stopped on purpose: no restart may follow (an absence, so a wait: 600 ms is over twice the
    // first restart's backoff).
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(influxd.restarts).toBe(1);
    expect(influxd.pid).toBe(secondPid);
    expect(alive(secondPid)).toBe(false);
  });

  it('says how to install influxd when it is missing', async () => {
    const error = await startManagedInfluxd({ dataDir, influxdPath: path.join(dataDir, 'no-such-influxd') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PW_ERR_INFLUXD_MISSING' });
    expect((error as Error).message).toMatch(/npm run setup/);
    expect((error as Error).message).toMatch(/PULSEWIRE_INFLUX_URL/);
  });

  it('fails with influxd stderr when influxd cannot start', async () => {
    // /bin/false stands in for an influxd that exits at once.
    const error = await startManagedInfluxd({ dataDir, influxdPath: '/bin/false', readyTimeoutMs: 5000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PW_ERR_STORAGE_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/influxd exited with code 1/);
  });
});
