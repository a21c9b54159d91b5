import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/storage/influxd-config.js';

describe('npm run demo (the README main command)', () => {
  it('runs the hub and a fleet, says where to look, and stops cleanly on Ctrl-C with zero loss', async () => {
    execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'pipe' });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-demo-'));
    const port = await freePort();
    const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      env: { ...process.env, PULSEWIRE_DATA_DIR: dataDir, PULSEWIRE_PORT: String(port), DEMO_DEVICES: '8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.on('data', (c) => { out += c; });
    demo.stderr.on('data', (c) => { out += c; });
    const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
    try {
      await expect.poll(() => out, { timeout: 60_000, interval: 200 }).toContain('Ctrl-C stops everything');
      expect(out).toContain(`hub on http://127.0.0.1:${port}`);
      expect(out).toMatch(/operator token: {2}\S{16,}/);
      expect(out).toMatch(/InfluxDB: +http:\/\/127\.0\.0\.1:\d+/);
      // Let some telemetry flow, then Ctrl-C.
      await expect.poll(async () => {
        const token = /operator token: {2}(\S+)/.exec(out)![1];
        const res = await fetch(`http://127.0.0.1:${port}/v1/devices?online=true`, { headers: { authorization: `Bearer ${token}` } });
        return ((await res.json()) as { devices: unknown[] }).devices.length;
      }, { timeout: 30_000, interval: 500 }).toBeGreaterThanOrEqual(7);
      await new Promise((r) => setTimeout(r, 3000));
      demo.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('device-sim summary');
      expect(out).toMatch(/zero loss/);
      expect(out).toMatch(/hub stopped \(exit 0\)/);
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
