/**
 * Pieces every operator route shares: the error body the error handler
 * writes, the `:id` parameter of device routes, and the 404 for a device
 * the registry does not know.
 */
import { PulsewireError } from '../errors/catalog.js';
import { DEVICE_ID_PATTERN } from '../protocol/limits.js';
import type { DeviceRegistry } from '../registry/device-registry.js';

export const errorView = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;

export const deviceIdParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: DEVICE_ID_PATTERN.source } },
} as const;

/** The id, when the registry knows the device (removed ones included as unknown); else PW_ERR_DEVICE_NOT_FOUND. */
export async function knownDevice(registry: DeviceRegistry, id: string): Promise<string> {
  if (!(await registry.identity(id))) throw new PulsewireError('PW_ERR_DEVICE_NOT_FOUND', id);
  return id;
}
