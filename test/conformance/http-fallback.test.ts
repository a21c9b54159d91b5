/**
 * Conformance of the hub's HTTP fallback (protocol v1 section 8;
 * docs/protocol.md "HTTP fallback", and docs/http-fallback.md where that
 * section sends the reader for presence, "sent" and errors), seen from the
 * spec client: POST batches and GET long polls whose answers are arrays of
 * the WebSocket frames, byte for byte. Nothing here imports the hub's code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';
import { enrolled, newId, rec, settlesTo } from './fixtures.js';
import { encode, encodeDeterministic, fromHex, hex, Tagged } from './mini-cbor.js';
import {
  ACK,
  basicAuth,
  COMMAND,
  DESIRED,
  enrollmentSecret,
  EVENT_CEILING_MS,
  reported,
  result,
  SpecHttpDevice,
  SUCCEEDED,
  telemetry,
} from './spec-client.js';

// Section 7 vectors.
const V_TELEMETRY =
  '83010782a5006474656d70016343656c02fb4037800000000000216664657634322f221a69248100a4006368756d01632552480218290601';
const V_REPORTED = '8205a262667765312e322e3068696e74657276616c181e';
const V_RESULT = '840464632d303101a1626f6bf5';

/** The vector's time + 60 s: the hub's clock for telemetry, so the vector is inside the window on any date. */
const HUB_NOW_US = (1764000000 + 60) * 1e6;
/** Seconds an operator read waits for a final status: a ceiling, not a speed claim. */
const WAIT_S = EVENT_CEILING_MS / 1000;

let hub: TestHub;
beforeAll(async () => {
  hub = await startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '1000' }, { nowUs: () => HUB_NOW_US });
});
afterAll(async () => {
  await hub?.close();
});

function httpDevice(id = newId('http')): SpecHttpDevice {
  return new SpecHttpDevice(hub.baseUrl, id, enrollmentSecret(ENROLLMENT_KEY, id));
}

async function createCommand(id: string, body: Record<string, unknown>): Promise<string> {
  const created = await hub.api('POST', `/v1/devices/${id}/commands`, body);
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  return created.body.id as string;
}

async function telemetryRows(id: string) {
  return hub.db.query(`SELECT * FROM telemetry WHERE "device" = '${id}'`);
}

describe('HTTP fallback: POST /v1/device/messages', () => {
  it('answers the TELEMETRY vector with [[2, 7]] (81820207) after storing it, a resend with [[2, 7, 1]]; a REPORTED in the same body is merged', async () => {
    const device = httpDevice('dev42');
    const first = await device.post([fromHex(V_TELEMETRY), fromHex(V_REPORTED)]);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^application\/cbor/);
    expect(hex(first.body)).toBe('81820207');
    expect((await telemetryRows('dev42')).map((r) => [r.name, r.time])).toEqual([
      ['dev42/temp', 1764000000 * 1e6],
      ['dev42/hum', 1764000001 * 1e6],
    ]);
    const again = await device.post([fromHex(V_TELEMETRY)]);
    expect(hex(again.body)).toBe('8183020701');
    expect(await telemetryRows('dev42')).toHaveLength(2);
    await settlesTo(async () => (await hub.api('GET', '/v1/devices/dev42/state')).body.reported, { fw: '1.2.0', interval: 30 });
  });

  it('answers [] (80) to an empty batch and to a GET with nothing waiting, with or without wait=0', async () => {
    const device = httpDevice();
    expect(hex((await device.post([])).body)).toBe('80');
    expect(hex((await device.poll()).body)).toBe('80');
    expect(hex((await device.poll(0)).body)).toBe('80');
  });

  it('acknowledges each TELEMETRY of a batch in order with the same codes as the WebSocket (0, 2, 3), and handles messages in body order', async () => {
    const device = httpDevice();
    const answer = await device.post([
      telemetry(1, [rec({ n: 'ok', v: 1 })]),
      telemetry(2, [rec({ n: 'bad name', v: 1 })]),
      telemetry(3, [rec({ n: 'late', v: 1, t: HUB_NOW_US / 1e6 - 40 * 86400 })]),
      reported(new Map([['a', 1]])),
      reported(new Map<string, unknown>([['a', null], ['b', 2]])),
      telemetry(4, [rec({ n: 'ok', v: 2, t: -1 })]),
    ]);
    expect(answer.status).toBe(200);
    expect(answer.messages.map((m) => (m.type === ACK ? [m.seq, m.code] : m.type))).toEqual([[1, 0], [2, 2], [3, 3], [4, 0]]);
    expect(answer.messages.filter((m) => m.type === ACK && m.code !== 0).every((m) => m.type === ACK && typeof m.reason === 'string')).toBe(true);
    expect(hex(answer.elements[0]!)).toBe('820201'); // accepted: [2, seq], no code
    expect((await telemetryRows(device.deviceId)).map((r) => r.value).sort()).toEqual([1, 2]);
    await settlesTo(async () => (await hub.api('GET', `/v1/devices/${device.deviceId}/state`)).body.reported, { b: 2 });
  });

  it('puts DESIRED after the ACKs, once per presence and again after a change', async () => {
    const device = httpDevice();
    expect((await device.post([])).status).toBe(200); // registers the device (enrollment) and makes it present
    const patch = await hub.api('PATCH', `/v1/devices/${device.deviceId}/desired`, { interval: 30 });
    expect(patch.status).toBe(200);
    const answer = await device.post([telemetry(1, [rec({ n: 'x', v: 1 })])]);
    expect(answer.elements.map(hex)).toEqual([hex(encode([ACK, 1])), hex(encodeDeterministic([DESIRED, patch.body.version, { interval: 30 }]))]);
    expect(hex((await device.post([])).body)).toBe('80'); // already has this version
    const next = await hub.api('PATCH', `/v1/devices/${device.deviceId}/desired`, { interval: 60 });
    expect((await device.post([])).elements.map(hex)).toEqual([hex(encodeDeterministic([DESIRED, next.body.version, { interval: 60 }]))]);
  });
});

describe('HTTP fallback: commands by long poll', () => {
  it('a long poll answers as soon as a command waits, with the COMMAND frame byte for byte; a RESULT in a POST ends it', async () => {
    const device = httpDevice();
    expect((await device.post([])).status).toBe(200);
    const aborter = new AbortController();
    const poll = device.poll(WAIT_S, aborter.signal);
    try {
      const args = { seconds: 30, ratio: 0.5 };
      const cid = await createCommand(device.deviceId, { name: 'set_interval', args });
      const answer = await poll;
      expect(answer.status).toBe(200);
      expect(answer.elements.map(hex)).toEqual([hex(encodeDeterministic([COMMAND, cid, 'set_interval', args]))]);
      // "sent" once the response carrying it was written.
      await settlesTo(async () => (await hub.api('GET', `/v1/devices/${device.deviceId}/commands/${cid}`)).body.status, 'sent');
      const answered = await device.post([result(cid, SUCCEEDED, new Map([['ok', true]]))]);
      expect(hex(answered.body)).toBe('80');
      const done = await hub.api('GET', `/v1/devices/${device.deviceId}/commands/${cid}?wait=${WAIT_S}`);
      expect(done.body).toMatchObject({ status: 'succeeded', result: { ok: true } });
    } finally {
      aborter.abort();
      await poll.catch(() => undefined);
    }
  });

  it('a second long poll of the same device releases the first with [] at once; the other one stays the way down', async () => {
    const device = httpDevice();
    expect((await device.post([])).status).toBe(200);
    // Which of two concurrent requests the hub sees first is not the test's to decide: whichever
    // it released must answer [], and the one still open must be the one that gets the command.
    const polls = [device.poll(WAIT_S), device.poll(WAIT_S)];
    const [released, answer] = await Promise.race(polls.map((p, i) => p.then((a) => [i, a] as const)));
    expect(hex(answer.body)).toBe('80');
    const cid = await createCommand(device.deviceId, { name: 'ping' });
    const holder = await polls[1 - released]!;
    expect(holder.elements.map(hex)).toEqual([hex(encodeDeterministic([COMMAND, cid, 'ping', null]))]);
  });

  it('a POST answers a waiting command after its ACKs, and never sends it twice', async () => {
    const device = httpDevice();
    expect((await device.post([])).status).toBe(200);
    const cid = await createCommand(device.deviceId, { name: 'reboot' });
    const answer = await device.post([telemetry(5, [rec({ n: 'x', v: 1 })])]);
    expect(answer.elements.map(hex)).toEqual([hex(encode([ACK, 5])), hex(encodeDeterministic([COMMAND, cid, 'reboot', null]))]);
    expect(hex((await device.poll(0)).body)).toBe('80');
    // The section 7 RESULT vector is for c-01, a command this device does not have: ignored, not an error.
    expect(hex((await device.post([fromHex(V_RESULT)])).body)).toBe('80');
  });

  it('a device whose WebSocket is open gets DESIRED and COMMAND on the socket only; its HTTP requests are still served', async () => {
    const id = newId('both');
    const ws = await enrolled(hub, id);
    const device = httpDevice(id);
    const patch = await hub.api('PATCH', `/v1/devices/${id}/desired`, { interval: 30 });
    expect((await ws.desired()).version).toBe(patch.body.version);
    const cid = await createCommand(id, { name: 'ping' });
    expect((await ws.command()).commandId).toBe(cid);
    // A first HTTP request of this device: its ACK only, no DESIRED and no COMMAND (they went on the socket).
    const answer = await device.post([telemetry(1, [rec({ n: 'x', v: 1 })])]);
    expect(hex(answer.body)).toBe(hex(encode([[ACK, 1]])));
    expect(await telemetryRows(id)).toHaveLength(1);
    ws.send(result(cid, SUCCEEDED));
    expect((await hub.api('GET', `/v1/devices/${id}/commands/${cid}?wait=${WAIT_S}`)).body.status).toBe('succeeded');
    await ws.close();
  });
});

describe('HTTP fallback: refusals', () => {
  it('401 with WWW-Authenticate Basic realm="pulsewire" for a wrong secret, an empty Authorization and another device\'s secret', async () => {
    const device = new SpecHttpDevice(hub.baseUrl, newId('bad'), 'not-the-secret');
    const wrong = await device.post([]);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="pulsewire"');
    const empty = await device.postBody(encode([]), { authorization: '' });
    expect(empty.status).toBe(401);
    const other = httpDevice();
    const otherSecret = await other.post([], { authorization: basicAuth(other.deviceId, enrollmentSecret(ENROLLMENT_KEY, 'someone-else')) });
    expect(otherSecret.status).toBe(401);
  });

  it('415 for a body that is not application/cbor', async () => {
    const answer = await httpDevice().postBody(encode([]), { 'content-type': 'application/json' });
    expect(answer.status).toBe(415);
    expect(answer.error?.code).toBe('PW_ERR_MEDIA_TYPE');
  });

  /** Second messages of a batch that make the whole body invalid (docs/protocol.md, Error mapping). */
  const invalid: [string, Uint8Array, string][] = [
    ['a message that is not an array', encode(new Map([[1, 1]])), 'PW_ERR_MESSAGE_SHAPE'],
    ['a bare SenML pack', encode([rec({ n: 'x', v: 1 })]), 'PW_ERR_MESSAGE_SHAPE'],
    ['an ACK sent by a device', encode([ACK, 1]), 'PW_ERR_MESSAGE_DIRECTION'],
    ['an unknown type', encode([9, 1]), 'PW_ERR_MESSAGE_TYPE'],
    ['a tag', telemetry(1, [rec({ n: 'x', v: new Tagged(2, Uint8Array.from([1])) })]), 'PW_ERR_CBOR_TAG'],
    ['bytes that are not CBOR', fromHex('1c'), 'PW_ERR_CBOR_MALFORMED'],
    ['a RESULT status above 3', result('c-01', 4), 'PW_ERR_MESSAGE_SHAPE'],
  ];
  it.each(invalid)('400 for a batch whose second message is %s; nothing of the body is processed', async (_what, bad, code) => {
    const device = httpDevice();
    const good = telemetry(7, [rec({ n: 'x', v: 1 })]);
    const refused = await device.postBody(Buffer.concat([fromHex('82'), good, bad]));
    expect(refused.status).toBe(400);
    expect(refused.error?.code).toBe(code);
    // "the message names which element of the batch" (docs/protocol.md); whether the count starts
    // at 0 or 1 the docs do not say (records are 0-based), so only that it names one is asserted.
    if (!code.startsWith('PW_ERR_CBOR')) expect(refused.error?.message).toMatch(/\bmessage \d+: /);
    // The good message before it was not stored: sent alone now, it is new (ACK 0, not 1).
    expect(hex((await device.post([good])).body)).toBe(hex(encode([[ACK, 7]])));
    expect(await telemetryRows(device.deviceId)).toHaveLength(1);
  });

  it('400 for a body that is not an array', async () => {
    const refused = await httpDevice().postBody(encode(new Map([[1, 1]])));
    expect(refused.status).toBe(400);
    expect(refused.error?.code).toBe('PW_ERR_MESSAGE_SHAPE');
  });

  it('413 for a body larger than the message limit (64 KiB by default)', async () => {
    const device = httpDevice();
    const big = await device.post([reported(new Map([['k', 'v'.repeat(64 * 1024)]]))]);
    expect(big.status).toBe(413);
    expect(await hub.api('GET', `/v1/devices/${device.deviceId}/state`).then((r) => r.body.reported)).toEqual({});
  });

  it('413 for more than 32 TELEMETRY messages in one body (the in-flight window), nothing stored', async () => {
    const device = httpDevice();
    const answer = await device.post(Array.from({ length: 33 }, (_, i) => telemetry(i, [rec({ n: 'x', v: i, t: -i })])));
    expect(answer.status).toBe(413);
    expect(answer.error?.code).toBe('PW_ERR_BATCH_TOO_BIG');
    expect(await telemetryRows(device.deviceId)).toHaveLength(0);
    const fits = await device.post(Array.from({ length: 32 }, (_, i) => telemetry(i, [rec({ n: 'x', v: i, t: -i })])));
    expect(fits.messages).toEqual(Array.from({ length: 32 }, (_, seq) => ({ type: ACK, seq, code: 0 })));
  });

  it('400 for a wait that is not a whole number from 0 to 60', async () => {
    const device = httpDevice();
    for (const wait of ['61', '-1', 'soon', '1.5']) {
      const answer = await device.poll(wait);
      expect(answer.status, `wait=${wait}`).toBe(400);
      expect(answer.error?.message, `wait=${wait}`).toContain('wait');
    }
  });
});

describe('HTTP fallback: presence', () => {
  it('online from the first request, offline with poll-timeout no sooner than 2 x pingInterval after the last one', async () => {
    const pingMs = 500;
    const own = await startHub({ PULSEWIRE_PING_INTERVAL_MS: String(pingMs) });
    try {
      const id = newId('presence');
      const device = new SpecHttpDevice(own.baseUrl, id, enrollmentSecret(ENROLLMENT_KEY, id));
      const startedAt = Date.now();
      expect((await device.post([])).status).toBe(200);
      const rows = await until(async () => {
        const r = await own.db.query(`SELECT * FROM device_status WHERE "device" = '${id}'`);
        return r.length === 2 ? r : undefined;
      }, EVENT_CEILING_MS);
      expect(rows.map((r) => [r.online, r.reason])).toEqual([[true, 'connected'], [false, 'poll-timeout']]);
      // The hub saw the request end after the test started it; microsecond times.
      expect(rows[1]!.time / 1000 - startedAt).toBeGreaterThanOrEqual(2 * pingMs);
    } finally {
      await own.close();
    }
  });
});
