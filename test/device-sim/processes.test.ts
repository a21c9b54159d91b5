/**
 * `--processes N` as a user runs it (`node --import tsx device-sim/cli.ts`,
 * the form that passes signals on): one fleet over several processes, one
 * status line and one summary whose counts are the sum of the children's;
 * the status line shows devices waiting to reconnect and failed connects by
 * reason while nothing listens; a child that dies is reported, and a parent
 * killed with SIGKILL leaves no child behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { unreachable, type Unreachable } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** A ceiling for three node processes starting on a busy 2-core machine, not a speed claim. */
const CEILING_MS = 60_000;

type Sim = { proc: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<{ code: number | null; signal: string | null }> };

const started: number[] = [];
let hub: TestHub | undefined;
let nowhere: Unreachable | undefined;
afterEach(async () => {
  // Whatever a failed test left: the simulator processes this file started, by pid.
  for (const pid of started.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await hub?.close();
  await nowhere?.release();
  hub = nowhere = undefined;
});

function sim(args: string[]): Sim {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'device-sim/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, PULSEWIRE_ENROLLMENT_KEY: ENROLLMENT_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc.pid!);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return { proc, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * The simulator children of `pid` (from /proc: the parent does not print their pids). By command
 * line, because tsx may have started an esbuild service as a child of the same parent.
 */
function simChildrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number)) {
    const stat = procStat(entry);
    if (!stat || stat.ppid !== pid || stat.state === 'Z') continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('device-sim/cli.ts')) found.push(entry);
    } catch {
      // gone meanwhile
    }
  }
  started.push(...found);
  return found;
}

/** State and parent of a process; undefined once it is gone. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so read from the last ')'.
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** A zombie has exited; only its entry waits for a parent (or an init that may not reap) to collect it. */
function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(5, '0')}`);

describe('device-sim --processes', () => {
  it('two processes against a real hub: every device connects and is acknowledged; the merged summary is the sum', async () => {
    hub = await startHub();
    const readings = new Map<string, number>();
    hub.app.bus.on('telemetry.accepted', (e) => readings.set(e.deviceId, (readings.get(e.deviceId) ?? 0) + e.readings.length));
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'sim-procs-')), 'summary.json');
    const run = sim(['--url', hub.deviceUrl, '--devices', '20', '--processes', '2', '--prefix', 'mp-', '--rate', '5', '--batch', '2',
      '--ramp', '1000', '--status', 'off', '--summary', file]);
    // SIGTERM once every device has had a message stored, however long the machine takes to get there.
    await waitFor(() => readings.size === 20, { timeoutMs: CEILING_MS, what: `20 devices sending; sim said: ${run.stderr()}` });
    run.proc.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });

    // The ids one process would have created: mp-00001 .. mp-00020, split 10 + 10.
    expect([...readings.keys()].sort()).toEqual(ids('mp-', 20));
    const summary = JSON.parse(await readFile(file, 'utf8'));
    const t = summary.telemetry;
    expect(summary.devices).toBe(20);
    expect(summary.processes).toEqual({ count: 2, failed: [] });
    expect(summary.connections).toEqual({ connects: 20, connectFailures: {}, disconnects: { 1000: 20 }, connectedAtEnd: 20 });
    expect(t.sent).toBeGreaterThanOrEqual(20);
    expect(t.acknowledged).toEqual({ 0: t.sent });
    expect(t.stored).toBe(t.sent);
    expect(t.unacknowledged).toBe(0);
    expect(t.records).toBe(t.sent * 2);
    // What the hub stored is what both processes together say they sent: nothing lost, nothing twice.
    expect([...readings.values()].reduce((a, b) => a + b)).toBe(t.records);
    expect(summary.latencyMs.count).toBe(t.sent);
    expect(summary.latencyMs.p99).toBeGreaterThanOrEqual(summary.latencyMs.p50);
    expect(run.stdout()).toContain('zero loss');
    expect(run.stdout()).toMatch(/processes\s+2, each ended normally/);
    expect(run.stderr()).toContain('20 devices (mixed) -> ');
    expect(run.stderr()).toContain(' in 2 processes');
  }, 120_000);

  it('nothing listening: the one status line shows devices waiting to reconnect and ECONNREFUSED growing', async () => {
    nowhere = await unreachable();
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'sim-procs-')), 'summary.json');
    const run = sim(['--url', `ws://${nowhere.host}:${nowhere.port}/v1/device`, '--devices', '40', '--processes', '2', '--ramp', '1000',
      '--status', 'plain', '--summary', file]);
    type Line = { connected: number; connecting: number; notStarted: number; waiting: number; refused: number };
    const lines = (): Line[] => run.stdout().split('\n').flatMap((line) => {
      const m = /devices (\d+)\/40 connected, (\d+) connecting(?:, (\d+) to start)? \| (\d+) waiting to reconnect(?: \| connect failures: ECONNREFUSED (\d+))?/.exec(line);
      return m ? [{ connected: +m[1]!, connecting: +m[2]!, notStarted: +(m[3] ?? 0), waiting: +m[4]!, refused: +(m[5] ?? 0) }] : [];
    });
    // Two status lines (one every 5 s) with refusals counted, the later with more: they are counted as they happen.
    await waitFor(() => {
      const counted = lines().filter((l) => l.refused > 0);
      return counted.length >= 2 && counted.at(-1)!.refused > counted[0]!.refused;
    }, { timeoutMs: CEILING_MS, what: `growing ECONNREFUSED in the status lines; stdout: ${run.stdout()} stderr: ${run.stderr()}` });
    for (const line of lines()) {
      expect(line.connected).toBe(0);
      // Every device of both processes is in exactly one of these.
      expect(line.connecting + line.notStarted + line.waiting).toBe(40);
    }
    expect(lines().some((l) => l.waiting > 0)).toBe(true);
    const lastShown = lines().at(-1)!.refused;

    run.proc.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    const summary = JSON.parse(await readFile(file, 'utf8'));
    expect(Object.keys(summary.connections.connectFailures)).toEqual(['ECONNREFUSED']);
    expect(summary.connections.connectFailures.ECONNREFUSED).toBeGreaterThanOrEqual(lastShown);
    expect(summary.connections.connects).toBe(0);
    expect(summary.telemetry.sent).toBe(0);
    expect(summary.processes).toEqual({ count: 2, failed: [] });
  }, 120_000);

  it('a child killed with SIGKILL is reported in the summary and the run exits 1; the other child\'s figures stay', async () => {
    hub = await startHub();
    const online = new Set<string>();
    hub.app.bus.on('device.online', (e) => online.add(e.deviceId));
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'sim-procs-')), 'summary.json');
    const run = sim(['--url', hub.deviceUrl, '--devices', '10', '--processes', '2', '--prefix', 'crash-', '--rate', '5',
      '--ramp', '1000', '--status', 'plain', '--summary', file]);
    await waitFor(() => online.size === 10, { timeoutMs: CEILING_MS, what: `10 devices online; sim said: ${run.stderr()}` });
    // Both children have reported their devices connected (a status line is built from their reports).
    await waitFor(() => run.stdout().includes('devices 10/10 connected'), { timeoutMs: CEILING_MS, what: 'a status line with all connected' });
    const children = simChildrenOf(run.proc.pid!);
    expect(children).toHaveLength(2);
    // Which child is which is not visible from outside; kill one and read the summary for its range.
    process.kill(children[0]!, 'SIGKILL');
    await waitFor(() => run.stderr().includes('killed by SIGKILL; the others go on'), { timeoutMs: CEILING_MS, what: 'the parent noticing' });
    run.proc.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 1, signal: null });

    const summary = JSON.parse(await readFile(file, 'utf8'));
    expect(summary.processes.count).toBe(2);
    expect(summary.processes.failed).toHaveLength(1);
    const failed = summary.processes.failed[0];
    expect(['crash-00001..crash-00005', 'crash-00006..crash-00010']).toContain(failed.devices);
    expect(failed.exit).toBe('killed by SIGKILL, without its summary');
    // Its devices were connected in its last report; the survivor closed its five with 1000.
    expect(summary.connections.connects).toBe(10);
    expect(summary.connections.disconnects).toEqual({ 1000: 5 });
    expect(summary.connections.connectedAtEnd).toBe(5);
    expect(run.stdout()).toContain('1 FAILED: #');
    expect(run.stdout()).toContain('result           unknown: 1 process(es) failed');
  }, 120_000);

  it('a parent killed with SIGKILL leaves no child behind: they see the IPC channel close and exit', async () => {
    hub = await startHub();
    const online = new Set<string>();
    const offline = new Set<string>();
    hub.app.bus.on('device.online', (e) => online.add(e.deviceId));
    hub.app.bus.on('device.offline', (e) => offline.add(e.deviceId));
    const run = sim(['--url', hub.deviceUrl, '--devices', '10', '--processes', '2', '--prefix', 'orphan-', '--rate', '1',
      '--ramp', '1000', '--status', 'off']);
    await waitFor(() => online.size === 10, { timeoutMs: CEILING_MS, what: `10 devices online; sim said: ${run.stderr()}` });
    const children = simChildrenOf(run.proc.pid!);
    expect(children).toHaveLength(2);

    run.proc.kill('SIGKILL');
    expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor(() => children.every((pid) => !alive(pid)), { timeoutMs: CEILING_MS, what: 'children gone' });
    // They closed their connections on the way out (the hub sees every device go offline).
    await waitFor(() => offline.size === 10, { timeoutMs: CEILING_MS, what: 'every device offline at the hub' });
  }, 120_000);
});
