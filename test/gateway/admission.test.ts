import { afterEach, describe, expect, it } from 'vitest';
import { AdmissionTicket, DeviceAdmission, UpgradeTurn, type AdmissionLimits, type AdmissionRefusal } from '../../src/gateway/admission.js';
import { TestDevice, type Refusal } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

const NONE: AdmissionLimits = { maxDeviceConnections: undefined, maxConnectionsPerAddress: undefined, maxHandshakes: 1000, acceptRate: 1000 };

function refused(result: AdmissionTicket | AdmissionRefusal): AdmissionRefusal {
  if (result instanceof AdmissionTicket) throw new Error('admitted');
  return result;
}

function ticket(result: AdmissionTicket | AdmissionRefusal): AdmissionTicket {
  if (!(result instanceof AdmissionTicket)) throw new Error(`refused: ${result.error.message}`);
  return result;
}

describe('DeviceAdmission', () => {
  it('caps connections in total, and admits again once one closes', () => {
    const admission = new DeviceAdmission({ ...NONE, maxDeviceConnections: 2 }, { random: () => 0 });
    const a = ticket(admission.admit('10.0.0.1'));
    ticket(admission.admit('10.0.0.2'));
    const full = refused(admission.admit('10.0.0.3'));
    expect(full.error.code).toBe('PW_ERR_CONNECTIONS_FULL');
    expect(full.error.message).toBe('hub at its device connection limit, retry later: 2 device connections (PULSEWIRE_MAX_DEVICE_CONNECTIONS)');
    expect(full.retryAfterS).toBe(10);
    a.release();
    a.release(); // a second close changes nothing
    expect(admission.connections).toBe(1);
    ticket(admission.admit('10.0.0.3'));
    expect(admission.connections).toBe(2);
  });

  it('caps connections per address, IPv6 per /64, and forgets an address with none open', () => {
    const admission = new DeviceAdmission({ ...NONE, maxConnectionsPerAddress: 1 }, { random: () => 0.999 });
    const first = ticket(admission.admit('2001:db8:1:2::1'));
    const same64 = refused(admission.admit('2001:db8:1:2:ffff::9'));
    expect(same64.error.code).toBe('PW_ERR_ADDRESS_CONNECTIONS_FULL');
    expect(same64.retryAfterS).toBe(60);
    ticket(admission.admit('2001:db8:1:3::1'));
    ticket(admission.admit('192.0.2.1'));
    expect(refused(admission.admit('::ffff:192.0.2.1')).error.code).toBe('PW_ERR_ADDRESS_CONNECTIONS_FULL');
    first.release();
    ticket(admission.admit('2001:db8:1:2::2'));
  });

  it('caps handshakes in progress; an upgraded connection no longer counts as one', () => {
    const admission = new DeviceAdmission({ ...NONE, maxHandshakes: 2 }, { random: () => 0 });
    const a = ticket(admission.admit('10.0.0.1'));
    ticket(admission.admit('10.0.0.1'));
    const busy = refused(admission.admit('10.0.0.1'));
    expect(busy.error.code).toBe('PW_ERR_HANDSHAKES_BUSY');
    expect(busy.retryAfterS).toBe(1);
    a.handshakeDone();
    expect(admission.handshakes).toBe(1);
    ticket(admission.admit('10.0.0.1'));
    expect(admission.connections).toBe(3);
  });

  it('paces handshakes begun per second: a burst of one second, then the rate', () => {
    let now = 0;
    const admission = new DeviceAdmission({ ...NONE, acceptRate: 3 }, { now: () => now, random: () => 0.5 });
    for (let i = 0; i < 3; i++) ticket(admission.admit('10.0.0.1')).release();
    const fast = refused(admission.admit('10.0.0.1'));
    expect(fast.error.message).toBe('too many device connections per second, retry later: 3 per second (PULSEWIRE_ACCEPT_RATE)');
    expect(fast.retryAfterS).toBe(3);
    now += 334;
    ticket(admission.admit('10.0.0.1'));
  });
});

describe('DeviceAdmission with a queue', () => {
  const QUEUED: AdmissionLimits = { ...NONE, maxWaiting: 100, maxWaitMs: 60_000 };
  const admissions: DeviceAdmission[] = [];
  afterEach(() => { for (const a of admissions.splice(0)) a.close(); });
  const make = (limits: AdmissionLimits) => { const a = new DeviceAdmission(limits, { random: () => 0 }); admissions.push(a); return a; };
  const turn = (result: UpgradeTurn | AdmissionRefusal): UpgradeTurn => {
    if (!(result instanceof UpgradeTurn)) throw new Error(`refused: ${result.error.message}`);
    return result;
  };

  it('lets those past the rate wait, then in, first come first served, a tick at a time', async () => {
    // 100 a second: one per 10 ms tick.
    const admission = make({ ...QUEUED, acceptRate: 100 });
    const turns = Array.from({ length: 5 }, () => turn(admission.queueTurn()));
    expect(turns.map((t) => t.waiting)).toEqual([false, true, true, true, true]);
    expect(admission.waiting).toBe(4);
    expect(admission.handshakes).toBe(1);
    const order: number[] = [];
    const refusals = await Promise.all(turns.map((t, i) => t.turn().then((refusal) => { order.push(i); return refusal; })));
    expect(refusals).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(admission.waiting).toBe(0);
    expect(admission.handshakes).toBe(5);
    // Its turn came: the connection caps are checked now, and the ticket holds the handshake until done.
    const ticketed = ticket(admission.admit('10.0.0.1', turns[4]));
    ticketed.handshakeDone();
    expect(admission.handshakes).toBe(4);
    expect(admission.connections).toBe(1);
  });

  it('waits for a handshake in progress to finish rather than refusing', async () => {
    const admission = make({ ...QUEUED, maxHandshakes: 1 });
    const first = turn(admission.queueTurn());
    const second = turn(admission.queueTurn());
    expect(second.waiting).toBe(true);
    let went = false;
    const going = second.turn().then((refusal) => { went = true; return refusal; });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(went).toBe(false);
    first.done();
    expect(await going).toBeUndefined();
    expect(admission.handshakes).toBe(1);
  });

  it('refuses past PULSEWIRE_ADMISSION_WAIT_MS with 503 material, and frees the place it held', async () => {
    const admission = make({ ...QUEUED, maxHandshakes: 1, maxWaitMs: 30 });
    turn(admission.queueTurn());
    const late = turn(admission.queueTurn());
    const refusal = await late.turn();
    expect(refusal?.error.code).toBe('PW_ERR_ACCEPT_RATE');
    expect(refusal?.error.message).toContain('PULSEWIRE_ADMISSION_WAIT_MS');
    expect(refusal?.retryAfterS).toBe(1);
    expect(admission.waiting).toBe(0);
    expect(admission.handshakes).toBe(1);
  });

  it('refuses past PULSEWIRE_ADMISSION_QUEUE at once', () => {
    const admission = make({ ...QUEUED, maxHandshakes: 1, maxWaiting: 2 });
    for (let i = 0; i < 3; i++) turn(admission.queueTurn());
    const full = admission.queueTurn();
    if (full instanceof UpgradeTurn) throw new Error('queued');
    expect(full.error.code).toBe('PW_ERR_HANDSHAKES_BUSY');
    expect(full.error.message).toContain('PULSEWIRE_ADMISSION_QUEUE');
    expect(admission.waiting).toBe(2);
  });

  it('drops a waiting upgrade whose socket closed; the one behind it gets its turn', async () => {
    const admission = make({ ...QUEUED, maxHandshakes: 1 });
    const first = turn(admission.queueTurn());
    const gone = turn(admission.queueTurn());
    const next = turn(admission.queueTurn());
    gone.done();
    expect((await gone.turn())?.error.code).toBe('PW_ERR_HANDSHAKES_BUSY');
    expect(admission.waiting).toBe(1);
    first.done();
    expect(await next.turn()).toBeUndefined();
    expect(admission.handshakes).toBe(1);
  });

  it('gives the turn back when the caps refuse it', () => {
    const admission = make({ ...QUEUED, maxDeviceConnections: 1 });
    ticket(admission.admit('10.0.0.1', turn(admission.queueTurn())));
    const over = turn(admission.queueTurn());
    expect(refused(admission.admit('10.0.0.2', over)).error.code).toBe('PW_ERR_CONNECTIONS_FULL');
    expect(admission.handshakes).toBe(1);
  });

  it('close() refuses those still waiting', async () => {
    const admission = make({ ...QUEUED, maxHandshakes: 1 });
    turn(admission.queueTurn());
    const waiting = turn(admission.queueTurn());
    admission.close();
    expect((await waiting.turn())?.error.message).toContain('stopping');
    expect(admission.waiting).toBe(0);
  });
});

describe('admission at the handshake', () => {
  let hub: TestHub | undefined;
  const devices: TestDevice[] = [];
  afterEach(async () => {
    for (const device of devices.splice(0)) await device.close().catch(() => undefined);
    await hub?.close();
    hub = undefined;
  });

  const refusal = (promise: Promise<TestDevice>) => promise.then(
    (device) => { devices.push(device); throw new Error('upgraded'); },
    (err: Refusal) => { if (!err.status) throw err; return err; },
  );
  const metrics = async () => (await hub!.app.metricsText()).text;

  it('answers past PULSEWIRE_MAX_DEVICE_CONNECTIONS with 503 and Retry-After before the upgrade; a closed connection frees its place', async () => {
    hub = await startHub({ PULSEWIRE_MAX_DEVICE_CONNECTIONS: '2' });
    devices.push(await TestDevice.connect(hub.deviceUrl, { id: 'cap-1' }), await TestDevice.connect(hub.deviceUrl, { id: 'cap-2' }));
    const r = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'cap-3' }));
    expect(r.status).toBe(503);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(10);
    expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(r.body).toContain('PULSEWIRE_MAX_DEVICE_CONNECTIONS');
    expect(await metrics()).toMatch(/pulsewire_device_connections 2\b/);
    expect(await metrics()).toMatch(/pulsewire_handshake_refusals_total\{reason="PW_ERR_CONNECTIONS_FULL"\} 1/);
    // The refused device is not registered: admission comes before the credentials.
    expect((await hub.api('GET', '/v1/devices/cap-3')).status).toBe(404);
    await devices.shift()!.close();
    await waitFor(async () => /pulsewire_device_connections 1\b/.test(await metrics()), { what: 'closed connection released' });
    devices.push(await TestDevice.connect(hub.deviceUrl, { id: 'cap-3' }));
  });

  it('answers past PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS with 503; another address is admitted', async () => {
    hub = await startHub({ PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS: '1' });
    devices.push(await TestDevice.connect(hub.deviceUrl, { id: 'addr-1', localAddress: '127.0.0.1' }));
    const r = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'addr-2', localAddress: '127.0.0.1' }));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toMatch(/^\d+$/);
    expect(r.body).toContain('PULSEWIRE_MAX_CONNECTIONS_PER_ADDRESS');
    devices.push(await TestDevice.connect(hub.deviceUrl, { id: 'addr-2', localAddress: '127.0.0.2' }));
  });

  it('answers past PULSEWIRE_MAX_HANDSHAKES with 503 while handshakes wait on the registry', async () => {
    hub = await startHub({ PULSEWIRE_MAX_HANDSHAKES: '2', PULSEWIRE_ADMISSION_QUEUE: '0' });
    // Hold every credential check until released: the handshakes stay in progress.
    const registry = hub.app.registry as unknown as { identity: (id: string) => Promise<unknown> };
    const identity = registry.identity.bind(registry);
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    let waiting = 0;
    registry.identity = async (id) => { waiting++; await held; return identity(id); };
    const slow = [TestDevice.connect(hub.deviceUrl, { id: 'hs-1' }), TestDevice.connect(hub.deviceUrl, { id: 'hs-2' })];
    await waitFor(() => waiting === 2, { what: 'two handshakes in progress' });
    expect(await metrics()).toMatch(/pulsewire_device_handshakes 2\b/);
    const r = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'hs-3' }));
    expect(r.status).toBe(503);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(5);
    expect(r.body).toContain('PULSEWIRE_MAX_HANDSHAKES');
    release();
    devices.push(...(await Promise.all(slow)));
    expect(await metrics()).toMatch(/pulsewire_device_handshakes 0\b/);
    devices.push(await TestDevice.connect(hub.deviceUrl, { id: 'hs-3' }));
  });

  it('with no admission queue, answers handshakes begun faster than PULSEWIRE_ACCEPT_RATE with 503 and a short Retry-After; /readyz still answers', async () => {
    hub = await startHub({ PULSEWIRE_ACCEPT_RATE: '2', PULSEWIRE_ADMISSION_QUEUE: '0' });
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => TestDevice.connect(hub!.deviceUrl, { id: `rate-${i}` }).then(
      (device) => { devices.push(device); return 'admitted' as const; },
      (err: Refusal) => { if (!err.status) throw err; return err; },
    )));
    const seconds = (Date.now() - started) / 1000;
    const admitted = outcomes.filter((o) => o === 'admitted').length;
    const refusals = outcomes.filter((o): o is Refusal => o !== 'admitted');
    expect(admitted).toBeGreaterThanOrEqual(2);
    expect(admitted).toBeLessThanOrEqual(2 + Math.ceil(seconds * 2));
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals) {
      expect(r.status).toBe(503);
      expect(r.body).toContain('PULSEWIRE_ACCEPT_RATE');
      expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(5);
    }
    expect((await fetch(`${hub.baseUrl}/readyz`)).status).toBeLessThan(500);
  });

  it('lets handshakes past PULSEWIRE_ACCEPT_RATE wait their turn: all admitted, none refused, /readyz answers while they wait', async () => {
    hub = await startHub({ PULSEWIRE_ACCEPT_RATE: '2' });
    const connecting = Array.from({ length: 6 }, (_, i) => TestDevice.connect(hub!.deviceUrl, { id: `queued-${i}` }));
    await waitFor(async () => /pulsewire_device_handshakes_waiting [1-9]/.test(await metrics()), { what: 'upgrades waiting in the admission queue' });
    const ready = await fetch(`${hub.baseUrl}/readyz`);
    await ready.arrayBuffer();
    expect(ready.status).toBe(200);
    devices.push(...(await Promise.all(connecting)));
    expect(devices).toHaveLength(6);
    expect(await metrics()).toMatch(/pulsewire_device_handshakes_waiting 0\b/);
    expect(await metrics()).not.toMatch(/pulsewire_handshake_refusals_total\{reason="PW_ERR_ACCEPT_RATE"\}/);
  });

  it('answers an upgrade that waited past PULSEWIRE_ADMISSION_WAIT_MS with 503 and Retry-After', async () => {
    hub = await startHub({ PULSEWIRE_MAX_HANDSHAKES: '1', PULSEWIRE_ADMISSION_WAIT_MS: '300' });
    const registry = hub.app.registry as unknown as { identity: (id: string) => Promise<unknown> };
    const identity = registry.identity.bind(registry);
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    registry.identity = async (id) => { await held; return identity(id); };
    const slow = TestDevice.connect(hub.deviceUrl, { id: 'wait-1' });
    const r = await refusal(TestDevice.connect(hub.deviceUrl, { id: 'wait-2' }));
    expect(r.status).toBe(503);
    expect(r.body).toContain('PULSEWIRE_ADMISSION_WAIT_MS');
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await metrics()).toMatch(/pulsewire_handshake_refusals_total\{reason="PW_ERR_ACCEPT_RATE"\} 1\b/);
    release();
    devices.push(await slow);
  });
});
