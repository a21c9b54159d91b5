import { expect } from 'vitest';
import type { CommandMessage, HubMessage } from '../../src/protocol/messages.js';
import type { TestDevice } from './device-client.js';

/** The device's next frame, which must be a COMMAND. */
export async function nextCommand(device: TestDevice): Promise<CommandMessage> {
  const message: HubMessage = await device.next();
  expect(message.type).toBe(3);
  return message as CommandMessage;
}

/**
 * Resolves once the hub has handed every frame `device` sent before this call to its message
 * handler: the hub answers a WebSocket ping only after the frames ahead of it. RESULT is handled
 * there without waiting, so a RESULT the hub should ignore is known to be ignored by then; no sleep.
 */
export function hubHasRead(device: TestDevice, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no pong within ${timeoutMs} ms`)), timeoutMs);
    device.socket.once('pong', () => { clearTimeout(timer); resolve(); });
    device.socket.ping();
  });
}
