/**
 * How many device connections this process can hold at most: each one is a
 * file descriptor, and the open-files limit caps them. Node cannot raise its
 * own limit, so the hub says so at start instead of failing at connection
 * 19,990 with EMFILE.
 */
import { readFileSync } from 'node:fs';

/** Descriptors the hub needs besides device sockets: lmdb, influxd pipes, listeners, logs. */
const RESERVED_DESCRIPTORS = 64;

export function openFilesLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined; // not Linux: nothing to say
  }
}

export function deviceCapacity(limit: number | undefined): number | undefined {
  return limit === undefined ? undefined : Math.max(0, limit - RESERVED_DESCRIPTORS);
}

/**
 * Descriptors kept free of device connections by PULSEWIRE_MAX_DEVICE_CONNECTIONS=auto:
 * operators' requests and live streams, the HTTP fallback, InfluxDB and NATS connections.
 */
export const ADMISSION_RESERVE = 200;

/** What PULSEWIRE_MAX_DEVICE_CONNECTIONS=auto admits; undefined (no cap) when the limit is unknown. */
export function autoDeviceConnections(limit: number | undefined): number | undefined {
  const capacity = deviceCapacity(limit);
  return capacity === undefined ? undefined : Math.max(1, capacity - ADMISSION_RESERVE);
}
