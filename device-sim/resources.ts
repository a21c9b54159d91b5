/**
 * Operating-system limits that decide whether one process can hold tens of
 * thousands of connections, and what we do about each:
 * - open files: every socket is a file descriptor. Node has no setrlimit,
 *   but it raises its own soft limit to the hard limit at startup (checked on
 *   Node 20: `ulimit -Sn 1024; node` still sees the hard value), so the soft
 *   limit is already as high as this process can make it. Raising the hard
 *   limit needs privileges we do not take; we read /proc/self/limits and, when
 *   it is short, say what to run before starting.
 * - local ports: a connection from 127.0.0.1 to one hub address and port
 *   needs its own source port, and Linux hands out about 28,000 of them
 *   (net.ipv4.ip_local_port_range). A fleet of more than PER_ADDRESS devices
 *   binds every connection to a source address, 127.0.0.1 for the first
 *   PER_ADDRESS, then 127.0.0.2, 127.0.0.3, ...: all of 127.0.0.0/8 is
 *   loopback on Linux. Every one, the first group too: a port bound on any
 *   address is not handed to an unbound connect(), so with the first group
 *   left to the kernel the bound groups took its ports (measured here: at
 *   50,000 devices about 4,900 failed with EADDRNOTAVAIL), while bind() finds
 *   the whole range free on each address.
 */
import { readFileSync } from 'node:fs';

/** Descriptors beyond one per device: stdio, the event loop, DNS, the summary file. */
export const FD_MARGIN = 256;
/** Devices per loopback source address; below the default 28,231 ephemeral ports. */
export const PER_ADDRESS = 25_000;

export type FdLimit = { soft: number; hard: number };

/** The "Max open files" line of /proc/self/limits; undefined off Linux. */
export function readFdLimit(limitsText?: string): FdLimit | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const value = (s: string) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: value(m[1]!), hard: value(m[2]!) };
}

/** Descriptors one device holds: its WebSocket, or over http a long poll and a POST at the same time. */
export function descriptorsPerDevice(transport: 'ws' | 'http'): number {
  return transport === 'http' ? 2 : 1;
}

/** Devices one process can hold at this open-files limit, FD_MARGIN kept free; undefined when no limit is known. */
export function devicesPerProcess(transport: 'ws' | 'http', limit: FdLimit | undefined = readFdLimit()): number | undefined {
  if (limit === undefined || !Number.isFinite(limit.soft)) return undefined;
  return Math.max(1, Math.floor((limit.soft - FD_MARGIN) / descriptorsPerDevice(transport)));
}

/**
 * `--processes auto`: as few processes as hold `devices` at this limit (3 for
 * 50,000 at the hard limit of 20,000 here). The soft limit is the one that
 * counts: Node has already raised it to the hard one, and children inherit it.
 */
export function processesFor(devices: number, transport: 'ws' | 'http', limit: FdLimit | undefined = readFdLimit()): number {
  const perProcess = devicesPerProcess(transport, limit);
  return perProcess === undefined ? 1 : Math.ceil(devices / perProcess);
}

export type FdCheck = { ok: boolean; limit: FdLimit | undefined; needed: number; advice?: string };

/**
 * Whether `devices` sockets fit in this process's open-file limit, and if
 * not, what to run. Never throws: the fleet still starts, and connections
 * past the limit fail with EMFILE and are counted as failed connects.
 */
export function checkFdLimit(devices: number, limit: FdLimit | undefined = readFdLimit(), perDevice = 1): FdCheck {
  const needed = devices * perDevice + FD_MARGIN;
  if (limit === undefined || limit.soft >= needed) return { ok: true, limit, needed };
  const hardShort = limit.hard < needed;
  const advice = [
    `open file limit is ${limit.soft} (hard ${limit.hard}); ${devices} devices need about ${needed}.`,
    hardShort
      ? `Raise the hard limit and start again, e.g. as root: \`ulimit -Hn ${needed} && ulimit -n ${needed}\`` +
        ' (or LimitNOFILE= in a systemd unit, nofile in /etc/security/limits.conf, --ulimit nofile= for docker),' +
        ` or give the fleet more processes with --processes (each holds about ${Math.max(1, Math.floor((limit.hard - FD_MARGIN) / perDevice))} devices).`
      : `Run \`ulimit -n ${needed}\` in this shell and start again.`,
    `Until then at most about ${Math.max(0, Math.floor((limit.soft - FD_MARGIN) / perDevice))} devices can connect; the rest fail with EMFILE.`,
  ].join('\n');
  return { ok: false, limit, needed, advice };
}

/** Whether the hub is reached over loopback, where other source addresses exist for free. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Source address for device number `n` of a fleet whose last number is
 * `fleetLast` (across the processes of a split fleet): none (the kernel's
 * choice) while the fleet fits PER_ADDRESS, else 127.0.0.1 for the first
 * PER_ADDRESS numbers, 127.0.0.2 for the next, ... Undefined when the hub
 * is not on loopback.
 */
export function sourceAddressFor(n: number, hubHostname: string, fleetLast = n): string | undefined {
  if (fleetLast <= PER_ADDRESS || !isLoopbackHost(hubHostname)) return undefined;
  const k = 1 + Math.floor((n - 1) / PER_ADDRESS);
  return `127.0.${Math.floor(k / 256)}.${k % 256}`;
}

/** How many local ports the kernel hands out, for the warning when not on loopback. */
export function ephemeralPorts(): number | undefined {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return lo !== undefined && hi !== undefined ? hi - lo + 1 : undefined;
  } catch {
    return undefined;
  }
}
