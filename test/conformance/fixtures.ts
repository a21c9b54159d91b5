/**
 * What the conformance files share: SenML records with integer labels,
 * unique device ids, enrolled and registered devices, handshake refusals,
 * and a wait for a document to settle. Only the spec client and the test
 * harness (a real hub from test/support/hub.ts); never the hub's code.
 */
import { isDeepStrictEqual } from 'node:util';
import { expect } from 'vitest';
import { ENROLLMENT_KEY, type TestHub } from '../support/hub.js';
import { sleep } from '../support/wait.js';
import { connectDevice, enrollmentSecret, EVENT_CEILING_MS, HandshakeRefused, type Refusal, type SpecDevice } from './spec-client.js';

// SenML CBOR labels (RFC 8428 section 6).
export const L = { bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6, n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8 } as const;
type Label = keyof typeof L;

/** A SenML record as a CBOR map with integer labels, in the given order. */
export function rec(fields: Partial<Record<Label, unknown>>): Map<number, unknown> {
  return new Map(Object.entries(fields).map(([k, v]) => [L[k as Label], v]));
}

let idCounter = 0;
/** A device id no other test of this worker uses. */
export const newId = (prefix: string) => `${prefix}-${process.pid}-${++idCounter}`;

/** A device enrolled from the hub's enrollment key (section 2). */
export function enrolled(hub: TestHub, id = newId('dev')): Promise<SpecDevice> {
  return connectDevice(hub.deviceUrl, id, enrollmentSecret(ENROLLMENT_KEY, id));
}

/**
 * Registers `id` with PUT /v1/devices/:id and returns its secret. The README
 * says the answer is `{id, secret}`; it does not name the status, which is
 * 201 Created here.
 */
export async function register(hub: TestHub, id: string): Promise<string> {
  const put = await hub.api('PUT', `/v1/devices/${id}`);
  expect(put.status).toBe(201);
  expect(put.body.id).toBe(id);
  expect(typeof put.body.secret).toBe('string');
  return put.body.secret as string;
}

export async function refusal(p: Promise<unknown>): Promise<Refusal> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HandshakeRefused) return err.refusal;
    throw err;
  }
  throw new Error('the handshake was accepted');
}

/**
 * Polls `probe` until it equals `expected` (a document the hub stores without
 * answering, such as a REPORTED merge), then asserts it; after the ceiling
 * the assertion shows the last value, so a wrong hub fails with a diff.
 */
export async function settlesTo<T>(probe: () => Promise<T>, expected: unknown, timeoutMs = EVENT_CEILING_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!isDeepStrictEqual(last, expected) && Date.now() < deadline) {
    await sleep(25);
    last = await probe();
  }
  expect(last).toEqual(expected);
}
