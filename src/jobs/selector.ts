/**
 * Turns a job's target selector into the fixed list of device ids it rolls
 * out to, when the job is created. `onlineOnly` is not applied here: it is
 * checked for each device at its turn in the rollout (see rollout.ts), since
 * a rollout can take longer than a device stays online or offline.
 */
import { PulsewireError } from '../errors/catalog.js';
import { MAX_PAGE, type DeviceRegistry } from '../registry/device-registry.js';
import { MAX_JOB_TARGETS, type JobTarget } from './types.js';

/** How many unknown ids an error names before it summarises. */
const NAMED_UNKNOWN = 5;

export async function resolveTargets(registry: DeviceRegistry, target: JobTarget): Promise<string[]> {
  const hasIds = target.ids !== undefined;
  const hasPrefix = target.prefix !== undefined;
  if (hasIds === hasPrefix) {
    throw new PulsewireError('PW_ERR_BAD_REQUEST', 'target needs exactly one of ids or prefix (an empty prefix selects every device)');
  }
  const ids = hasIds ? await byIds(registry, target.ids!) : await byPrefix(registry, target.prefix!);
  if (ids.length === 0) {
    throw new PulsewireError('PW_ERR_JOB_NO_TARGETS', `no registered device has the prefix "${target.prefix}"`);
  }
  return ids;
}

async function byIds(registry: DeviceRegistry, requested: readonly string[]): Promise<string[]> {
  const ids = [...new Set(requested)];
  const known = await Promise.all(ids.map((id) => registry.identity(id)));
  const unknown = ids.filter((_, i) => !known[i]);
  if (unknown.length > 0) {
    const named = unknown.slice(0, NAMED_UNKNOWN).join(', ');
    const more = unknown.length > NAMED_UNKNOWN ? ` and ${unknown.length - NAMED_UNKNOWN} more` : '';
    throw new PulsewireError('PW_ERR_DEVICE_NOT_FOUND', `target.ids: ${named}${more}`);
  }
  return ids;
}

async function byPrefix(registry: DeviceRegistry, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await registry.list({ prefix, limit: MAX_PAGE, ...(cursor ? { cursor } : {}) });
    for (const device of page.devices) ids.push(device.id);
    if (ids.length > MAX_JOB_TARGETS) {
      throw new PulsewireError('PW_ERR_BAD_REQUEST', `prefix "${prefix}" matches more than ${MAX_JOB_TARGETS} devices, the most one job may target`);
    }
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}
