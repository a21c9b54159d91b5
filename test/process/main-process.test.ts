/**
 * The hub as a process (src/main.ts via tsx, with its managed influxd): it
 * says clearly why it cannot listen and leaves no influxd behind, and a hub
 * started with an IPC channel stops itself when its parent goes away.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHubProcess, startHubProcess } from '../support/hub-process.js';
import { waitFor } from '../support/wait.js';

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

/** A hub that is expected to fail at start: spawned on the given port, its stderr kept. */
function spawnFailingHub(dataDir: string, port: number): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawnHubProcess({ port, dataDir, stdio: ['ignore', 'ignore', 'pipe'] });
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
      const hub = spawnFailingHub(dataDir, port);
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

  it('listens with the backlog PULSEWIRE_LISTEN_BACKLOG names (a short queue overflows in a reconnect storm)', async () => {
    const hub = await startHubProcess({ dataDir, env: { PULSEWIRE_LISTEN_BACKLOG: '777' } });
    children.push(hub.child);
    try {
      // For a listening socket, ss shows the backlog in the Send-Q column (iproute2, installed by setup.sh).
      const listening = execFileSync('ss', ['-ltnH', `sport = :${hub.port}`], { encoding: 'utf8' }).trim().split(/\s+/);
      expect(listening[0]).toBe('LISTEN');
      expect(listening[2]).toBe('777');
    } finally {
      expect(await hub.kill('SIGTERM')).toBe(0);
    }
  }, 90_000);

  it('stops cleanly, influxd included, when the parent that started it with an IPC channel goes away', async () => {
    // Port 0, read back from the banner: a port picked first and bound later could be taken meanwhile.
    const hub = await startHubProcess({ dataDir, ipc: true });
    children.push(hub.child);
    await waitFor(async () => (await fetch(`${hub.baseUrl}/readyz`).catch(() => undefined))?.ok === true, { timeoutMs: 40_000, what: 'hub ready', everyMs: 200 });
    expect(processesMentioning(path.join(dataDir, 'influxdb'))).toHaveLength(1);
    hub.child.disconnect();
    expect(await hub.exited).toBe(0);
    // The hub waits for influxd to stop before it exits; the kernel may still be reaping it.
    await waitFor(() => processesMentioning(path.join(dataDir, 'influxdb')).length === 0, { what: 'influxd gone' });
    // Not asked again: whether the freed port now refuses. Another test worker may have been given it.
  }, 90_000);
});
