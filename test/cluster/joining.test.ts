/**
 * Joining a cluster: a node that cannot reach NATS at start exits at once
 * with a message naming PULSEWIRE_NATS_URL (exit code 5), instead of serving
 * devices whose identities it cannot read. Later outages are survived
 * (faults.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnHubProcess } from '../support/hub-process.js';
import { freshDatabase } from '../support/influx.js';
import { unreachable } from '../support/ports.js';

describe('joining a cluster', () => {
  it('exits with code 5 and names PULSEWIRE_NATS_URL when NATS cannot be reached at start', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-join-'));
    const nowhere = await unreachable();
    const database = await freshDatabase('join');
    try {
      const child = spawnHubProcess({
        dataDir, stdio: ['ignore', 'pipe', 'pipe'],
        env: { PULSEWIRE_NATS_URL: `nats://${nowhere.host}:${nowhere.port}`, PULSEWIRE_INFLUX_URL: database.url },
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(5);
      expect(stderr).toMatch(/PW_ERR_NATS_UNREACHABLE: cannot reach NATS at start: nats:\/\/[\d.]+:\d+ \(PULSEWIRE_NATS_URL\): /);
    } finally {
      await nowhere.release();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
