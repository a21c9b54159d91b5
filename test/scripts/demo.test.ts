/**
 * `npm run demo` as the README gives it, minus the build: vitest's global
 * setup built dist/ once before any file ran (test/support/build.ts), so no
 * test rebuilds it while another file's hubs serve it. PULSEWIRE_PORT=0: the
 * hub takes a free port and the demo reads it from the hub's banner.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DEVICES = 8;

describe('npm run demo (the README main command)', () => {
  it('runs the hub and a fleet, says where to look, and stops cleanly on Ctrl-C with zero loss', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pulsewire-demo-'));
    const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      env: { ...process.env, PULSEWIRE_DATA_DIR: dataDir, PULSEWIRE_PORT: '0', DEMO_DEVICES: String(DEVICES) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.on('data', (c) => { out += c; });
    demo.stderr.on('data', (c) => { out += c; });
    const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
    try {
      await expect.poll(() => out, { timeout: 90_000, interval: 200 }).toContain('Ctrl-C stops everything');
      const base = /Pulsewire demo: hub on (http:\/\/127\.0\.0\.1:\d+),/.exec(out)?.[1];
      expect(base, out).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
      expect(out).toMatch(/operator token: {2}\S{16,}/);
      expect(out).toMatch(/InfluxDB: +http:\/\/127\.0\.0\.1:\d+/);
      // Let some telemetry flow, then Ctrl-C. 6 % zombies of 8 devices rounds to none: all 8 come online.
      const token = /operator token: {2}(\S+)/.exec(out)![1];
      await expect.poll(async () => {
        const res = await fetch(`${base}/v1/devices?online=true`, { headers: { authorization: `Bearer ${token}` } });
        return ((await res.json()) as { devices: unknown[] }).devices.length;
      }, { timeout: 60_000, interval: 500 }).toBe(DEVICES);
      await expect.poll(async () => {
        const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
        return Number(/^pulsewire_messages_in_total\{type="telemetry"\} (\d+)$/m.exec(await res.text())?.[1] ?? 0);
      }, { timeout: 60_000, interval: 500 }).toBeGreaterThan(DEVICES);
      demo.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('device-sim summary');
      expect(out).toMatch(/zero loss/);
      expect(out).toMatch(/hub stopped \(exit 0\)/);
    } finally {
      if (demo.exitCode === null) demo.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 240_000);
});
