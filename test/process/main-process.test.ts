/**
 * The hub as a process (src/main.ts via tsx, with its managed influxd): it
 * says clearly why it cannot listen and leaves no influxd behind, and a hub
 * started with an IPC channel stops itself when its parent goes away.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/storage/influxd-config.js';
import { spawnHubProcess } from '../support/hub-process.js';
import { sleep, waitFor } from '../support/wait.js';

/** Pids of processes whose command line mentions `text` (the managed influxd names its data dir in its config path). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

function startHub(dataDir: string, port: number, ipc: boolean): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawnHubProcess({ port, dataDir, stdio: ipc ? ['ignore', 'ignore', 'pipe', 'ipc'] : ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

describe('the hub process', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pulsewire-main-'));
    dirs.push(dataDir);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of processesMentioning(dataDir)) process.kill(pid, 'SIGKILL');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('exits 4 naming the address and the variable when the port is taken, and stops its influxd', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const hub = startHub(dataDir, port, false);
      children.push(hub.child);
      expect(await hub.exited).toBe(4);
      expect(hub.stderr()).toContain(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
      expect(hub.stderr()).toContain('PULSEWIRE_PORT');
      expect(hub.stderr()).not.toMatch(/^\s+at /m);
      expect(processesMentioning(path.join(dataDir, 'influxdb'))).toEqual([]);
    } finally {
      squatter.close();
    }
  }, 60_000);

  it('stops cleanly, influxd included, when the parent that started it with an IPC channel goes away', async () => {
    const port = await freePort();
    const hub = startHub(dataDir, port, true);
    children.push(hub.child);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true, { timeoutMs: 40_000, what: 'hub ready', everyMs: 200 });
    expect(processesMentioning(path.join(dataDir, 'influxdb')).length).toBe(1);
    hub.child.disconnect();
    expect(await hub.exited).toBe(0);
    await sleep(100);
    expect(processesMentioning(path.join(dataDir, 'influxdb'))).toEqual([]);
    expect(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => 'answered', () => 'refused')).toBe('refused');
  }, 60_000);
});
