import { expect } from 'vitest';
import type { CommandMessage, HubMessage } from '../../src/protocol/messages.js';
import type { TestDevice } from './device-client.js';

/** The device's next frame, which must be a COMMAND. */
export async function nextCommand(device: TestDevice): Promise<CommandMessage> {
  const message: HubMessage = await device.next();
  expect(message.type).toBe(3);
  return message as CommandMessage;
}
