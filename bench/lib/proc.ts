/**
 * Process measurements and placement: CPU time from /proc, core pinning with
 * taskset (when there is one and at least two cores), and polling helpers.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** utime + stime of a process (all its threads), in seconds; USER_HZ is 100 on Linux. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Busy and total time of every core together, in ticks, from /proc/stat: the
 * whole machine, neighbours included (busy = all but idle and iowait). Two
 * readings apart say how much of the machine was in use, by anyone.
 */
export function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

/**
 * The kernel's count of connections a full listen backlog turned away (TcpExt ListenOverflows, and ListenDrops,
 * which includes them) in this network namespace, everyone's: a dropped SYN is sent again after 1 s, so a client
 * that met one waits a second more. Undefined where /proc/net/netstat cannot be read.
 */
export function listenOverflows(): { overflows: number; drops: number } | undefined {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/).map(Number);
    const get = (name: string) => values[names.indexOf(name)] ?? NaN;
    return { overflows: get('ListenOverflows'), drops: get('ListenDrops') };
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[21]) * 4096;
}

/** The first child of `pid` whose command name is `comm` (e.g. the hub's managed influxd). */
export function findChild(pid: number, comm: string): number | undefined {
  return findChildren(pid, comm)[0];
}

/** Every child of `pid` whose command name is `comm` (a hub's worker processes: `node`), in pid order. */
export function findChildren(pid: number, comm: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && name === comm) out.push(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return out.sort((a, b) => a - b);
}

export type Placement = {
  /** Pinning in effect: the system under test on `subject`, the load generator on `load`. */
  pinned: boolean;
  subject: string;
  load: string;
  /** How it was decided, for the report. */
  note: string;
};

/** Two cores and taskset: the measured process on CPU 0, the load on CPU 1, influxd left free. */
export function placement(wanted: boolean): Placement {
  if (!wanted) return { pinned: false, subject: 'any', load: 'any', note: 'pinning off (--no-pin)' };
  if (os.cpus().length < 2) return { pinned: false, subject: 'any', load: 'any', note: 'one core: nothing to pin' };
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
  } catch {
    return { pinned: false, subject: 'any', load: 'any', note: 'taskset not found (util-linux): not pinned' };
  }
  return { pinned: true, subject: '0', load: '1', note: 'taskset: measured process on CPU 0, load generator on CPU 1, influxd unpinned' };
}

/** Pins every thread of a running process; threads it starts later inherit the mask. */
export function pin(pid: number, cpus: string, place: Placement): void {
  if (!place.pinned) return;
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns true or the deadline passes; returns whether it did. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** VmRSS from /proc/PID/status, in bytes. */
export function vmRssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) * 1024;
}

export type MemoryStatus = { rss: number; anon: number; file: number; shmem: number };

/**
 * VmRSS and its parts from /proc/PID/status, in bytes: anonymous memory (the
 * JS heap, malloc: sockets, buffers, native objects), file-backed pages
 * (code, and lmdb's memory map: pages of its files the process touched,
 * which the kernel can drop and read back) and shared memory.
 */
export function memoryStatus(pid: number): MemoryStatus {
  const lines = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n');
  const kib = (key: string) => Number(/(\d+)/.exec(lines.find((l) => l.startsWith(`${key}:`)) ?? '')?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile'), shmem: kib('RssShmem') };
}

/** The open-files limits of this process (children inherit them), from /proc/self/limits. */
export function openFilesLimits(): { soft: number; hard: number } | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const [, soft, hard] = line?.split(/\s{2,}/) ?? [];
    const n = (v: string | undefined) => (v === undefined || v === 'unlimited' ? Infinity : Number(v));
    return { soft: n(soft), hard: n(hard) };
  } catch {
    return undefined;
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)]!;
}

/** What a set of processes used over a stretch of time, and the whole machine (one core = 100 %). */
export type CpuShares = {
  wallS: number;
  /** CPU seconds by process name (a name may stand for several processes: their sum). */
  seconds: Record<string, number>;
  percent: Record<string, number>;
  /** Every core of the machine, by anyone: ours and the neighbours'. */
  machinePercent: number;
  /** machinePercent minus ours: other sessions on a shared machine (and the kernel's work for nobody in particular). */
  othersPercent: number;
};

/** One process, several (summed), or a function for processes known later or replaced meanwhile (a supervised influxd). */
type Pids = number | number[] | (() => number | number[] | undefined);

/**
 * CPU of named processes between a mark and now, read from /proc: each
 * process's utime+stime and the machine's busy time, so a phase's table can
 * say which process used which share of the cores, and how much went to
 * neighbours. A process gone before the end counts as NaN.
 */
export class CpuMeter {
  readonly #procs = new Map<string, Pids>();

  add(name: string, pids: Pids): void {
    this.#procs.set(name, pids);
  }

  remove(name: string): void {
    this.#procs.delete(name);
  }

  mark(): CpuMark {
    return { at: performance.now(), machine: machineTicks(), seconds: this.#read() };
  }

  since(mark: CpuMark): CpuShares {
    const wallS = (performance.now() - mark.at) / 1000;
    const now = this.#read();
    const seconds: Record<string, number> = {};
    const percent: Record<string, number> = {};
    for (const [name, s] of Object.entries(now)) {
      seconds[name] = s - (mark.seconds[name] ?? NaN);
      percent[name] = (seconds[name]! / wallS) * 100;
    }
    const machine = machineTicks();
    const machinePercent = ((machine.busy - mark.machine.busy) / Math.max(1, machine.total - mark.machine.total)) * os.cpus().length * 100;
    const ours = Object.values(percent).filter(Number.isFinite).reduce((a, b) => a + b, 0);
    return { wallS, seconds, percent, machinePercent, othersPercent: machinePercent - ours };
  }

  /** "node 1 97 %, influxd 40 %, ..., machine 195 % (others 12 %)" for the log. */
  static line(s: CpuShares): string {
    const parts = Object.entries(s.percent).map(([name, p]) => `${name} ${Math.round(p)} %`);
    return `${parts.join(', ')}; machine ${Math.round(s.machinePercent)} % (others ${Math.round(s.othersPercent)} %)`;
  }

  #read(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, pids] of this.#procs) {
      const given = typeof pids === 'function' ? pids() : pids;
      const list = Array.isArray(given) ? given : [given];
      out[name] = list.reduce<number>((sum, pid) => {
        if (pid === undefined) return NaN;
        try {
          return sum + cpuSeconds(pid);
        } catch {
          return NaN;
        }
      }, 0);
    }
    return out;
  }
}

export type CpuMark = { at: number; machine: { busy: number; total: number }; seconds: Record<string, number> };

/** Open descriptors of a process (/proc/PID/fd): a server's sockets, give or take its few files and pipes. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}
