/**
 * Conformance of the hub to the device protocol, version 1
 * (/work/shared/protocol-v1.md, as docs/protocol.md documents it), seen from
 * a device written from that text alone: ./spec-client.ts and
 * ./mini-cbor.ts, no hub code, no cbor-x.
 *
 * This file: transport, authentication, TELEMETRY and ACK, invalid
 * messages, liveness and closing (sections 1-7). Commands, RESULT,
 * REPORTED and DESIRED: ./commands-and-state.test.ts. The HTTP fallback of
 * section 8: ./http-fallback.test.ts.
 *
 * Times: the hub whose telemetry clock is pinned (`hub`) takes the vector's
 * fixed date on any day; everything else uses relative SenML times. Waits
 * end at the event, with a generous ceiling (EVENT_CEILING_MS).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENROLLMENT_KEY, startHub, type TestHub } from '../support/hub.js';
import { sleep, until } from '../support/wait.js';
import { enrolled, L, newId, rec, refusal, register } from './fixtures.js';
import {
  decode,
  encode,
  float16,
  float32,
  float64,
  fromHex,
  hex,
  indefArray,
  indefBytes,
  indefMap,
  indefText,
  Raw,
  Tagged,
} from './mini-cbor.js';
import {
  authHeaders,
  basicAuth,
  connectDevice,
  enrollmentSecret,
  EVENT_CEILING_MS,
  RawDevice,
  rawHandshake,
  SpecDevice,
  SUBPROTOCOL,
  telemetry,
  type Refusal,
} from './spec-client.js';

// Section 7 vectors.
const V_TELEMETRY =
  '83010782a5006474656d70016343656c02fb4037800000000000216664657634322f221a69248100a4006368756d01632552480218290601';
const V_ACK = '820207';
const V_ACK_DUP = '83020701';
const V_COMMAND = '840364632d30316c7365745f696e74657276616ca1677365636f6e6473181e';
const V_RESULT = '840464632d303101a1626f6bf5';
const V_REPORTED = '8205a262667765312e322e3068696e74657276616c181e';
const V_DESIRED = '830603a168696e74657276616c181e';

const HUB_NOW_S = 1764000000 + 60; // the vector's time + 60 s
const HUB_NOW_US = HUB_NOW_S * 1e6;
const DAY = 86400;

type TelemetryRow = {
  time: number;
  device: string;
  name: string;
  unit: string | null;
  value: number | null;
  text: string | null;
  flag: boolean | null;
  data: string | null;
  sum: number | null;
};

async function telemetryRows(hub: TestHub, device: string): Promise<TelemetryRow[]> {
  const rows = await hub.db.query(`SELECT * FROM telemetry WHERE "device" = '${device}'`);
  return rows.map((r) => ({
    time: r.time,
    device: r.device as string,
    name: r.name as string,
    unit: (r.unit as string | undefined) ?? null,
    value: (r.value as number | undefined) ?? null,
    text: (r.text as string | undefined) ?? null,
    flag: (r.flag as boolean | undefined) ?? null,
    data: (r.data as string | undefined) ?? null,
    sum: (r.sum as number | undefined) ?? null,
  }));
}

async function statusRows(hub: TestHub, device: string): Promise<{ time: number; online: boolean; reason: string }[]> {
  const rows = await hub.db.query(`SELECT * FROM device_status WHERE "device" = '${device}'`);
  return rows.map((r) => ({ time: r.time, online: r.online as boolean, reason: r.reason as string }));
}

/** Parses a Basic challenge into its auth-params, minus an RFC 7617 charset="UTF-8". */
function basicChallenge(header: string | string[] | undefined): Record<string, string> | string {
  const h = Array.isArray(header) ? header.join(', ') : header ?? '';
  const m = /^Basic\s+(.*)$/i.exec(h);
  if (!m) return `not a Basic challenge: ${h}`;
  const params: Record<string, string> = {};
  for (const part of m[1]!.split(/\s*,\s*/)) {
    const kv = /^([A-Za-z][A-Za-z0-9_-]*)=(?:"([^"]*)"|([^\s",]+))$/.exec(part);
    if (!kv) return `bad auth-param in: ${h}`;
    params[kv[1]!.toLowerCase()] = kv[2] ?? kv[3]!;
  }
  if (params.charset !== undefined) {
    if (params.charset.toUpperCase() !== 'UTF-8') return `charset must be UTF-8: ${h}`;
    delete params.charset;
  }
  return params;
}

/** Sends `bytes` on a fresh enrolled connection and returns the close. */
async function sendAndExpectClose(hub: TestHub, bytes: Uint8Array): Promise<{ code: number; reason: string }> {
  const d = await enrolled(hub);
  d.send(bytes);
  return d.waitClosed().finally(() => d.terminate());
}

/** The device's device_status points once there are `count` of them. */
function statusPoints(hub: TestHub, device: string, count: number) {
  return until(async () => {
    const rows = await statusRows(hub, device);
    return rows.length >= count ? rows : undefined;
  }, EVENT_CEILING_MS);
}

// ====================================================================== hubs

/** Pinned clock (section 7), generous auth-failure limit so section 2 can fail at will. */
let hub: TestHub;
/** Real clock, small limits: 1024-byte messages, 3 names per device. */
let live: TestHub;

beforeAll(async () => {
  [hub, live] = await Promise.all([
    startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '1000' }, { nowUs: () => HUB_NOW_US }),
    startHub({
      PULSEWIRE_AUTH_MAX_FAILURES: '1000',
      PULSEWIRE_MAX_MESSAGE_BYTES: '1024',
      PULSEWIRE_MAX_NAMES_PER_DEVICE: '3',
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([hub?.close(), live?.close()]);
});

// ============================================================ own helpers

describe('section 7 vectors, as this client reads them', () => {
  it('this client encodes the TELEMETRY vector byte for byte and decodes the others as the spec describes', () => {
    const pack = [
      rec({ n: 'temp', u: 'Cel', v: float64(23.5), bn: 'dev42/', bt: 1764000000 }),
      rec({ n: 'hum', u: '%RH', v: 41, t: 1 }),
    ];
    expect(hex(telemetry(7, pack))).toBe(V_TELEMETRY);
    expect(hex(encode([2, 7]))).toBe(V_ACK);
    expect(hex(encode([2, 7, 1]))).toBe(V_ACK_DUP);
    expect(decode(fromHex(V_COMMAND))).toEqual([3, 'c-01', 'set_interval', new Map([['seconds', 30]])]);
    expect(decode(fromHex(V_RESULT))).toEqual([4, 'c-01', 1, new Map([['ok', true]])]);
    expect(decode(fromHex(V_REPORTED))).toEqual([5, new Map<string, unknown>([['fw', '1.2.0'], ['interval', 30]])]);
    expect(decode(fromHex(V_DESIRED))).toEqual([6, 3, new Map([['interval', 30]])]);
    // Decoder handles what a hub may send: indefinite lengths, all float widths.
    expect(decode(fromHex('9f02070203ff'))).toEqual([2, 7, 2, 3]);
    expect(decode(fromHex('83f93e00fa41bc0000fb4037800000000000'))).toEqual([1.5, 23.5, 23.5]);
    expect(decode(fromHex('bf617f7f61616162ffff'))).toEqual(new Map([['\u007f', 'ab']]));
  });
});

// ============================================================== section 1

describe('section 1: transport', () => {
  it('refuses a request that does not offer pulsewire.v1 with HTTP 400 and a one-line plain-text reason naming it', async () => {
    const id = newId('sp');
    const secret = enrollmentSecret(ENROLLMENT_KEY, id);
    for (const protocols of [null, 'mqtt', 'pulsewire.v2, pulsewire']) {
      const res = await rawHandshake(hub.deviceUrl, authHeaders(id, secret, protocols));
      expect(res.upgraded, `offering ${protocols}`).toBe(false);
      if (res.upgraded) continue;
      expect(res.status).toBe(400);
      expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
      const body = res.body.replace(/\r?\n$/, '');
      expect(body).not.toMatch(/[\r\n]/);
      expect(body.length).toBeGreaterThan(0);
      expect(body).toContain('pulsewire.v1');
    }
  });

  it('selects pulsewire.v1 when it is offered among others', async () => {
    const id = newId('sp');
    const res = await rawHandshake(hub.deviceUrl, authHeaders(id, enrollmentSecret(ENROLLMENT_KEY, id), 'foo.v9, pulsewire.v1'));
    expect(res.status).toBe(101);
    if (!res.upgraded) return;
    expect(res.acceptOk).toBe(true);
    expect(res.headers['sec-websocket-protocol']).toBe(SUBPROTOCOL);
    res.socket.destroy();
  });

  it('does not negotiate permessage-deflate by default', async () => {
    const id = newId('pmd');
    const d = await connectDevice(hub.deviceUrl, id, enrollmentSecret(ENROLLMENT_KEY, id), { perMessageDeflate: true });
    expect(d.protocol).toBe(SUBPROTOCOL);
    expect(d.extensions).toBe('');
    await d.close();
  });

  it('closes with 1003 on a text frame', async () => {
    const d = await enrolled(hub);
    d.sendText('[1, 1, []]');
    const closed = await d.waitClosed();
    expect(closed.code).toBe(1003);
  });

  it('accepts a message of exactly the configured maximum and closes with 1009 above it', async () => {
    const d = await enrolled(live);
    const sized = (total: number, seq: number) => {
      let len = 900;
      for (;;) {
        const m = telemetry(seq, [rec({ n: 'big', vs: 'x'.repeat(len) })]);
        if (m.length === total) return m;
        len += total - m.length;
      }
    };
    const exact = sized(1024, 1);
    expect(exact.length).toBe(1024);
    d.send(exact);
    expect((await d.ack(1)).code).toBe(0);
    d.send(sized(1025, 2));
    const closed = await d.waitClosed();
    expect(closed.code).toBe(1009);
  });

  it('accepts indefinite-length arrays, maps, text and byte strings and half/single floats in a TELEMETRY', async () => {
    const id = newId('indef');
    const d = await enrolled(hub, id);
    const pack = indefArray([
      indefMap([
        [L.bn, indefText([`${id}/`, 'x'])],
        [L.n, indefText(['ha', 'lf'])],
        [L.u, indefText(['C', 'el'])],
        [L.v, float16(1.5)],
        [L.t, float16(-2)],
      ]),
      indefMap([
        [L.n, 'single'],
        [L.v, float32(23.5)],
        [L.t, float32(-1.5)],
      ]),
      indefMap([
        [L.n, 'blob'],
        [L.vd, indefBytes([Uint8Array.from([1, 2]), Uint8Array.from([3])])],
      ]),
      new Map<number, unknown>([
        [L.n, 'dbl'],
        [L.v, float64(-0.25)],
      ]),
    ]);
    d.send(new Raw(Buffer.concat([fromHex('9f01'), encode(11), encode(pack), fromHex('ff')])).bytes);
    const ack = await d.ack(11);
    expect(ack.code).toBe(0);
    const rows = await telemetryRows(hub, id);
    const byName = new Map(rows.map((r) => [r.name, r]));
    expect([...byName.keys()].sort()).toEqual([`${id}/xblob`, `${id}/xdbl`, `${id}/xhalf`, `${id}/xsingle`]);
    expect(byName.get(`${id}/xhalf`)).toMatchObject({ value: 1.5, unit: 'Cel' });
    expect(byName.get(`${id}/xhalf`)!.time).toBe(HUB_NOW_US - 2e6);
    expect(byName.get(`${id}/xsingle`)).toMatchObject({ value: 23.5 });
    expect(byName.get(`${id}/xsingle`)!.time).toBe(HUB_NOW_US - 1.5e6);
    expect(Buffer.from(byName.get(`${id}/xblob`)!.data!, 'base64')).toEqual(Buffer.from([1, 2, 3]));
    expect(byName.get(`${id}/xdbl`)).toMatchObject({ value: -0.25 });
    await d.close();
  });
});

// ============================================================== section 2

describe('section 2: authentication', () => {
  it('accepts the registered secret from PUT /v1/devices/:id (random, at least 128 bits)', async () => {
    const id = newId('reg');
    const secret = await register(hub, id);
    expect(secret.length).toBeGreaterThanOrEqual(22); // 128 bits need >= 22 base64 characters
    expect(await register(hub, newId('reg'))).not.toBe(secret);
    const d = await connectDevice(hub.deviceUrl, id, secret);
    expect(d.protocol).toBe(SUBPROTOCOL);
    d.sendTelemetry(1, [rec({ n: 'x', v: 1 })]);
    expect((await d.ack(1)).code).toBe(0);
    await d.close();
  });

  it('accepts a secret derived from the enrollment key and registers the device on its first connection', async () => {
    const id = newId('enr');
    expect((await hub.api('GET', `/v1/devices/${id}`)).status).toBe(404);
    const d = await connectDevice(hub.deviceUrl, id, enrollmentSecret(ENROLLMENT_KEY, id));
    expect(d.isOpen).toBe(true);
    const got = await hub.api('GET', `/v1/devices/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(id);
    await d.close();
  });

  it('also accepts the enrollment-derived secret of a device registered with PUT ("either" secret)', async () => {
    const id = newId('both');
    await register(hub, id);
    const d = await connectDevice(hub.deviceUrl, id, enrollmentSecret(ENROLLMENT_KEY, id));
    expect(d.isOpen).toBe(true);
    await d.close();
  });

  it('accepts the Basic scheme name case-insensitively (RFC 7617 / RFC 7235)', async () => {
    const id = newId('case');
    const secret = enrollmentSecret(ENROLLMENT_KEY, id);
    const d = await connectDevice(hub.deviceUrl, id, secret, { authorization: basicAuth(id, secret, 'basic') });
    expect(d.isOpen).toBe(true);
    await d.close();
  });

  it('accepts a 64-character id using every allowed character class', async () => {
    const id = ('Az09._-' + 'x'.repeat(64)).slice(0, 64);
    expect(id.length).toBe(64);
    const d = await connectDevice(hub.deviceUrl, id, enrollmentSecret(ENROLLMENT_KEY, id));
    expect(d.isOpen).toBe(true);
    await d.close();
  });

  it('refuses ids outside 1..64 of [A-Za-z0-9._-] even with a correctly derived secret', async () => {
    for (const id of ['x'.repeat(65), 'a/b', 'a b', 'dév', 'a:b']) {
      const r = await refusal(connectDevice(hub.deviceUrl, id, enrollmentSecret(ENROLLMENT_KEY, id)));
      expect(r.status, `id ${JSON.stringify(id)}`).toBe(401);
    }
  });

  it('answers failures with 401 and WWW-Authenticate: Basic realm="pulsewire", unknown and wrong alike', async () => {
    const known = newId('known');
    const knownSecret = await register(hub, known);
    const unknown = newId('nobody');
    const cases: Record<string, Promise<SpecDevice>> = {
      wrongSecret: connectDevice(hub.deviceUrl, known, knownSecret.slice(0, -2) + (knownSecret.endsWith('AA') ? 'BB' : 'AA')),
      unknownDevice: connectDevice(hub.deviceUrl, unknown, knownSecret),
      otherDevicesSecret: connectDevice(hub.deviceUrl, known, enrollmentSecret(ENROLLMENT_KEY, unknown)),
      noAuthorization: connectDevice(hub.deviceUrl, known, '', { authorization: null }),
      bearer: connectDevice(hub.deviceUrl, known, '', { authorization: `Bearer ${knownSecret}` }),
    };
    const refusals: Record<string, Refusal> = {};
    for (const [name, p] of Object.entries(cases)) refusals[name] = await refusal(p);
    for (const [name, r] of Object.entries(refusals)) {
      expect(r.status, name).toBe(401);
      // Spec text: `WWW-Authenticate: Basic realm="pulsewire"`. RFC 7617 (which the
      // spec cites) also allows the charset="UTF-8" auth-param; nothing else.
      expect(basicChallenge(r.headers['www-authenticate']), name).toEqual({ realm: 'pulsewire' });
    }
    const look = (r: Refusal) => ({
      status: r.status,
      wwwAuthenticate: r.headers['www-authenticate'],
      contentType: r.headers['content-type'],
      body: r.body,
      headerNames: Object.keys(r.headers).filter((h) => h !== 'date').sort(),
    });
    expect(look(refusals.unknownDevice!)).toEqual(look(refusals.wrongSecret!));
  });

  it('closes the older connection with 4000 when the same device connects again; the newer one works', async () => {
    const id = newId('take');
    const first = await enrolled(hub, id);
    const second = await enrolled(hub, id);
    const closed = await first.waitClosed();
    expect(closed.code).toBe(4000);
    second.sendTelemetry(5, [rec({ n: 'x', v: 1 })]);
    expect((await second.ack(5)).code).toBe(0);
    expect(second.isOpen).toBe(true);
    await second.close();
  });

  it('rate-limits failed attempts per remote address (429 with Retry-After, per the README)', async () => {
    const limited = await startHub({ PULSEWIRE_AUTH_MAX_FAILURES: '3', PULSEWIRE_AUTH_BLOCK_MS: '60000' });
    try {
      const statuses: number[] = [];
      let last: Refusal | null = null;
      for (let i = 0; i < 5; i++) {
        last = await refusal(connectDevice(limited.deviceUrl, 'ghost', 'wrong-secret'));
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
      expect(statuses.slice(3)).toEqual([429, 429]);
      expect(last!.headers['retry-after']).toMatch(/^\d+$/);
    } finally {
      await limited.close();
    }
  });
});

// ============================================================== section 3

describe('section 3: TELEMETRY and ACK', () => {
  it('answers the TELEMETRY vector with exactly 820207, after the readings are in InfluxDB; a resend with 83020701', async () => {
    const d = await enrolled(hub, 'dev42');
    d.send(fromHex(V_TELEMETRY));
    const ack = await d.next((f) => f, 5000, 'ACK');
    expect(ack.binary).toBe(true);
    expect(hex(ack.bytes)).toBe(V_ACK);
    // Durable before the ACK: queried immediately, no waiting.
    const rows = await telemetryRows(hub, 'dev42');
    expect(rows).toEqual([
      { time: 1764000000 * 1e6, device: 'dev42', name: 'dev42/temp', unit: 'Cel', value: 23.5, text: null, flag: null, data: null, sum: null },
      { time: 1764000001 * 1e6, device: 'dev42', name: 'dev42/hum', unit: '%RH', value: 41, text: null, flag: null, data: null, sum: null },
    ]);
    d.send(fromHex(V_TELEMETRY));
    expect(hex((await d.next((f) => f, 5000, 'duplicate ACK')).bytes)).toBe(V_ACK_DUP);
    await d.close();
    // Across a reconnect too.
    const again = await enrolled(hub, 'dev42');
    again.send(fromHex(V_TELEMETRY));
    expect(hex((await again.next((f) => f, 5000, 'duplicate ACK after reconnect')).bytes)).toBe(V_ACK_DUP);
    expect(await telemetryRows(hub, 'dev42')).toHaveLength(2);
    await again.close();
  });

  it('does not store a resent seq twice (relative time, real clock, after a reconnect)', async () => {
    const id = newId('dup');
    const d = await enrolled(live, id);
    const msg = telemetry(77, [rec({ n: 'once', v: 3 })]);
    d.send(msg);
    expect((await d.ack(77)).code).toBe(0);
    await d.close();
    await sleep(20);
    const again = await enrolled(live, id);
    again.send(msg);
    const dup = await again.ack(77);
    expect(dup.code).toBe(1);
    expect(await telemetryRows(live, id)).toHaveLength(1);
    await again.close();
  });

  it('acknowledges 32 TELEMETRY messages in flight, each with its own seq, all accepted', async () => {
    const id = newId('flight');
    const d = await enrolled(hub, id);
    const seqs = Array.from({ length: 32 }, (_, i) => 1000 + i);
    for (const s of seqs) d.sendTelemetry(s, [rec({ n: `n${s % 3}`, v: s, t: -(s - 999) })]);
    const acks = [];
    for (let i = 0; i < seqs.length; i++) acks.push(await d.anyAck(10000));
    expect(acks.map((a) => a.seq).sort((a, b) => a - b)).toEqual(seqs);
    expect(acks.map((a) => a.code)).toEqual(seqs.map(() => 0));
    expect(await telemetryRows(hub, id)).toHaveLength(32);
    await d.close();
  });

  it('handles seq 2^32-1 and the wrap to 0', async () => {
    const d = await enrolled(hub);
    d.sendTelemetry(4294967295, [rec({ n: 'w', v: 1 })]);
    expect((await d.ack(4294967295)).code).toBe(0);
    d.sendTelemetry(0, [rec({ n: 'w', v: 2, t: -1 })]);
    expect((await d.ack(0)).code).toBe(0);
    await d.close();
  });

  it('stores readings with the section 6 schema: telemetry, tags device/name/unit, fields value/text/flag/data/sum', async () => {
    const id = newId('schema');
    const d = await enrolled(hub, id);
    const bytes = Uint8Array.from([0xfb, 0xff, 0xbf, 0x00, 0x10]);
    d.sendTelemetry(21, [
      rec({ bn: `${id}/`, bt: HUB_NOW_S - 100, n: 'v', u: 'V', v: 3.25 }),
      rec({ n: 'vs', vs: 'hello, world', t: 1 }),
      rec({ n: 'vb', vb: true, t: 2 }),
      rec({ n: 'vbf', vb: false, t: 2 }),
      rec({ n: 'vd', vd: bytes, t: 3 }),
      rec({ n: 's', u: 'J', s: 12.5, t: 4 }),
      rec({ n: 'neg', v: -7, t: 5 }),
    ]);
    expect((await d.ack(21)).code).toBe(0);
    const rows = await telemetryRows(hub, id);
    const T = (HUB_NOW_S - 100) * 1e6;
    const base = { device: id, unit: null, value: null, text: null, flag: null, data: null, sum: null };
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(byName[`${id}/v`]).toEqual({ ...base, time: T, name: `${id}/v`, unit: 'V', value: 3.25 });
    expect(byName[`${id}/vs`]).toEqual({ ...base, time: T + 1e6, name: `${id}/vs`, text: 'hello, world' });
    expect(byName[`${id}/vb`]).toEqual({ ...base, time: T + 2e6, name: `${id}/vb`, flag: true });
    expect(byName[`${id}/vbf`]).toEqual({ ...base, time: T + 2e6, name: `${id}/vbf`, flag: false });
    expect(byName[`${id}/vd`]).toMatchObject({ ...base, time: T + 3e6, name: `${id}/vd`, data: expect.any(String) });
    expect(byName[`${id}/vd`]!.data).toBe(Buffer.from(bytes).toString('base64')); // '+/+/ABA=', RFC 4648 section 4
    expect(byName[`${id}/s`]).toEqual({ ...base, time: T + 4e6, name: `${id}/s`, unit: 'J', sum: 12.5 });
    expect(byName[`${id}/neg`]).toEqual({ ...base, time: T + 5e6, name: `${id}/neg`, value: -7 });

    const fields = await hub.db.query('SHOW FIELD KEYS FROM telemetry');
    const types = Object.fromEntries(fields.map((f) => [f.fieldKey, f.fieldType]));
    expect(types).toEqual({ value: 'float', text: 'string', flag: 'boolean', data: 'string', sum: 'float' });
    const tags = (await hub.db.query('SHOW TAG KEYS FROM telemetry')).map((t) => t.tagKey).sort();
    expect(tags).toEqual(['device', 'name', 'unit']);
    await d.close();
  });

  it('resolves base values (RFC 8428 4.6) and carries them forward; text labels work too', async () => {
    const id = newId('base');
    const d = await enrolled(hub, id);
    const T = HUB_NOW_S - 3600;
    d.sendTelemetry(31, [
      rec({ bn: `${id}/a/`, bt: T, bu: 'V', bv: 10, bs: 100, n: 'x', v: 1 }),
      rec({ n: 'y', v: 2, t: 1 }),
      rec({ n: 'z', u: 'A', v: 0.5, t: 2 }),
      rec({ n: 'e', s: 5, t: 3 }),
      rec({ bn: `${id}/b/`, n: 'w', v: 3 }),
      new Map<string, unknown>([
        ['n', 'text'],
        ['v', 4],
        ['u', 'W'],
        ['t', 4],
      ]),
    ]);
    expect((await d.ack(31)).code).toBe(0);
    const rows = await telemetryRows(hub, id);
    const got = Object.fromEntries(rows.map((r) => [r.name, { time: r.time, unit: r.unit, value: r.value, sum: r.sum }]));
    const us = (s: number) => s * 1e6;
    expect(got).toEqual({
      [`${id}/a/x`]: { time: us(T), unit: 'V', value: 11, sum: null },
      [`${id}/a/y`]: { time: us(T + 1), unit: 'V', value: 12, sum: null },
      [`${id}/a/z`]: { time: us(T + 2), unit: 'A', value: 10.5, sum: null },
      [`${id}/a/e`]: { time: us(T + 3), unit: 'V', value: null, sum: 105 },
      [`${id}/b/w`]: { time: us(T), unit: 'V', value: 13, sum: null },
      [`${id}/b/text`]: { time: us(T + 4), unit: 'W', value: 14, sum: null },
    });
    await d.close();
  });

  it('resolves times below 2^28 relative to the hub clock (0/absent = now) and fractional epoch seconds', async () => {
    const id = newId('time');
    const d = await enrolled(hub, id);
    d.sendTelemetry(41, [
      rec({ bn: `${id}/`, n: 'now', v: 1 }),
      rec({ n: 'zero', v: 1, t: 0 }),
      rec({ n: 'ago', v: 1, t: -10 }),
      rec({ n: 'ago2', v: 1, bt: -5, t: -1.5 }),
      rec({ n: 'frac', v: 1, bt: 0, t: HUB_NOW_S - 20 + 0.25 }),
    ]);
    expect((await d.ack(41)).code).toBe(0);
    const rows = await telemetryRows(hub, id);
    const t = Object.fromEntries(rows.map((r) => [r.name.slice(id.length + 1), r.time]));
    // The hub's clock is pinned and it keeps whole microseconds (docs/protocol.md): exact.
    expect(t).toEqual({
      now: HUB_NOW_US,
      zero: HUB_NOW_US,
      ago: HUB_NOW_US - 10e6,
      ago2: HUB_NOW_US - 6.5e6,
      frac: HUB_NOW_US - 20e6 + 250000,
    });
    await d.close();
  });

  it('answers ACK code 3 for times out of range and accepts times just inside', async () => {
    const d = await enrolled(hub);
    const cases: [number, number][] = [
      [HUB_NOW_S + 290, 0],
      [HUB_NOW_S + 3600, 3],
      [HUB_NOW_S - 29 * DAY, 0],
      [HUB_NOW_S - 31 * DAY, 3],
      [310, 3], // relative, 310 s ahead
    ];
    let seq = 51;
    for (const [time, code] of cases) {
      d.sendTelemetry(seq, [rec({ n: 'r', v: 1, t: time })]);
      expect((await d.ack(seq)).code, `time ${time}`).toBe(code);
      seq++;
    }
    // Code 3 rejects the whole message.
    const id = newId('range');
    const e = await enrolled(hub, id);
    e.sendTelemetry(60, [rec({ n: 'ok', v: 1 }), rec({ n: 'late', v: 1, t: HUB_NOW_S - 40 * DAY })]);
    expect((await e.ack(60)).code).toBe(3);
    expect(await telemetryRows(hub, id)).toHaveLength(0);
    await Promise.all([d.close(), e.close()]);
  });

  it('answers ACK code 5 beyond the per-device name limit and rejects the whole message', async () => {
    const id = newId('names');
    const d = await enrolled(live, id);
    d.sendTelemetry(1, [rec({ n: 'a', v: 1 }), rec({ n: 'b', v: 1 }), rec({ n: 'c', v: 1 })]);
    expect((await d.ack(1)).code).toBe(0);
    d.sendTelemetry(2, [rec({ n: 'a', v: 2, t: -1 }), rec({ n: 'd', v: 2, t: -1 })]);
    expect((await d.ack(2)).code).toBe(5);
    d.sendTelemetry(3, [rec({ n: 'c', v: 3, t: -2 })]);
    expect((await d.ack(3)).code).toBe(0);
    const rows = await telemetryRows(live, id);
    expect(rows.map((r) => `${r.name}=${r.value}`).sort()).toEqual(['a=1', 'b=1', 'c=1', 'c=3']);
    await d.close();
  });

  const longName = 'n'.repeat(129);
  const malformed: [string, unknown[]][] = [
    ['a name starting with "-"', [rec({ n: '-x', v: 1 })]],
    ['a name starting with "_"', [rec({ n: '_x', v: 1 })]],
    ['a name with a space', [rec({ n: 'a b', v: 1 })]],
    ['an empty name', [rec({ v: 1 })]],
    ['a 129-character name', [rec({ n: longName, v: 1 })]],
    ['a 129-character name from bn + n', [rec({ bn: 'n'.repeat(100), n: 'n'.repeat(29), v: 1 })]],
    ['a 33-character unit', [rec({ n: 'x', u: 'U'.repeat(33), v: 1 })]],
    ['a non-ASCII unit', [rec({ n: 'x', u: '°C', v: 1 })]],
    ['a unit with a control character', [rec({ n: 'x', u: 'C\tel', v: 1 })]],
    ['a 1025-character text value', [rec({ n: 'x', vs: 'y'.repeat(1025) })]],
    ['a text value with a control character', [rec({ n: 'x', vs: 'bell\u0007' })]],
    ['both v and vs', [rec({ n: 'x', v: 1, vs: 'a' })]],
    ['both v and s', [rec({ n: 'x', v: 1, s: 2 })]],
    ['both vb and vd', [rec({ n: 'x', vb: true, vd: Uint8Array.from([1]) })]],
    ['no value at all', [rec({ n: 'x', u: 'V' })]],
    ['NaN (half float)', [rec({ n: 'x', v: float16(NaN) })]],
    ['+Infinity (double)', [rec({ n: 'x', v: float64(Infinity) })]],
    ['-Infinity (single) as a sum', [rec({ n: 'x', s: float32(-Infinity) })]],
    ['NaN as a time', [rec({ n: 'x', v: 1, t: float64(NaN) })]],
    ['1025 records (default limit 1024)', Array.from({ length: 1025 }, (_, i) => rec({ n: 'x', v: i }))],
    ['one good record and one bad one', [rec({ n: 'good', v: 1 }), rec({ n: 'bad name', v: 1 })]],
  ];
  it.each(malformed)('answers ACK code 2 for %s, stores nothing, keeps the connection', async (_what, pack) => {
    const id = newId('bad');
    const d = await enrolled(hub, id);
    d.sendTelemetry(9, pack);
    const ack = await d.ack(9);
    expect(ack.code).toBe(2);
    const shape = decode(ack.bytes) as unknown[];
    expect([3, 4]).toContain(shape.length); // [2, seq, code] or [2, seq, code, reason]
    if (shape.length === 4) expect(typeof shape[3]).toBe('string');
    d.sendTelemetry(10, [rec({ n: 'after', v: 1 })]);
    expect((await d.ack(10)).code).toBe(0);
    const rows = await telemetryRows(hub, id);
    expect(rows.map((r) => r.name)).toEqual(['after']);
    await d.close();
  });

  const wrongShapes: [string, unknown][] = [
    ['a pack that is not an array', 5],
    ['a record that is not a map', [1, 2]],
    ['vb that is not a boolean', [rec({ n: 'x', vb: 1 })]],
    ['vs that is not a text string', [rec({ n: 'x', vs: 5 })]],
    ['n that is not a text string', [rec({ n: 5, v: 1 })]],
    ['vd that is not a byte string', [rec({ n: 'x', vd: 'AQ' })]],
  ];
  it.each(wrongShapes)('rejects %s (ACK 2, or 1007 as a wrong element type) and stores nothing', async (_what, pack) => {
    const id = newId('shape');
    const d = await enrolled(hub, id);
    d.sendTelemetry(9, pack);
    const outcome = await Promise.race([
      d.ack(9).then((a) => `ack ${a.code}`),
      d.closed.then((c) => `close ${c.code}`),
    ]).catch((e: unknown) => String(e));
    expect(['ack 2', 'close 1007']).toContain(outcome);
    expect(await telemetryRows(hub, id)).toHaveLength(0);
    d.terminate();
  });

  it('answers ACK code 2 for RFC 8428 packs it must not use: an unknown must-understand label, bver above 10', async () => {
    const id = newId('rfc');
    const d = await enrolled(hub, id);
    d.sendTelemetry(1, [new Map<unknown, unknown>([[L.n, 'x'], [L.v, 1], ['foo_', 1]])]);
    expect((await d.ack(1)).code).toBe(2);
    d.sendTelemetry(2, [rec({ bver: 11, n: 'x', v: 1 })]);
    expect((await d.ack(2)).code).toBe(2);
    // Unknown labels without the underscore are ignored; bver 10 is fine.
    d.sendTelemetry(3, [new Map<unknown, unknown>([[L.bver, 10], [L.n, 'y'], [L.v, 1], ['note', 'hi'], [L.ut, 60]])]);
    expect((await d.ack(3)).code).toBe(0);
    expect((await telemetryRows(hub, id)).map((r) => r.name)).toEqual(['y']);
    await d.close();
  });

  it('treats a seq that was rejected (code 2) as not accepted: the corrected message with it is stored, code 0', async () => {
    const id = newId('retry');
    const d = await enrolled(hub, id);
    d.sendTelemetry(500, [rec({ n: 'bad name', v: 1 })]);
    expect((await d.ack(500)).code).toBe(2);
    d.sendTelemetry(500, [rec({ n: 'good', v: 1 })]);
    expect((await d.ack(500)).code).toBe(0);
    expect((await telemetryRows(hub, id)).map((r) => r.name)).toEqual(['good']);
    await d.close();
  });

  it('accepts the limits themselves: 1024 records, 128-character names, 32-character units, 1024-character texts', async () => {
    const id = newId('edge');
    const d = await enrolled(hub, id);
    d.sendTelemetry(1, Array.from({ length: 1024 }, (_, i) => rec({ n: `r${i % 8}`, v: i, t: -i })));
    expect((await d.ack(1)).code).toBe(0);
    d.sendTelemetry(2, [rec({ n: 'N'.repeat(128), u: '~'.repeat(32), v: 1 }), rec({ n: 'txt', vs: 't'.repeat(1024) })]);
    expect((await d.ack(2)).code).toBe(0);
    const rows = await telemetryRows(hub, id);
    expect(rows).toHaveLength(1026);
    await d.close();
  });

  it('stores a bare SenML pack and does not acknowledge it', async () => {
    const id = newId('bare');
    const d = await enrolled(hub, id);
    d.send(encode([rec({ bn: `${id}/`, n: 'fire', v: 42 }), rec({ n: 'forget', vs: 'yes' })]));
    const rows = await until(async () => {
      const r = await telemetryRows(hub, id);
      return r.length === 2 ? r : undefined;
    }, EVENT_CEILING_MS);
    expect(rows.map((r) => r.name).sort()).toEqual([`${id}/fire`, `${id}/forget`]);
    expect(await d.framesWithin(300)).toEqual([]);
    d.sendTelemetry(3, [rec({ n: 'then', v: 1 })]);
    const next = await d.next((f) => f, EVENT_CEILING_MS, 'the next frame');
    expect(hex(next.bytes)).toBe(hex(encode([2, 3]))); // first frame the hub ever sent is this ACK
    await d.close();
  });
});

describe('section 3: invalid messages close with 1007', () => {
  const pack = [rec({ n: 'x', v: 1 })];
  const nested = (levels: number): unknown => (levels === 1 ? [] : [nested(levels - 1)]);
  /** A TELEMETRY whose deepest container is at `depth` (the message array is level 1). */
  const withDepth = (depth: number, seq: number) =>
    telemetry(seq, [new Map<unknown, unknown>([[L.n, 'deep'], [L.v, 1], ['ext', nested(depth - 3)]])]);

  const invalid: [string, Uint8Array][] = [
    ['not CBOR (reserved additional information)', fromHex('1c')],
    ['truncated CBOR', telemetry(1, pack).subarray(0, 5)],
    ['a second data item after the message', Buffer.concat([telemetry(1, pack), fromHex('00')])],
    ['an unterminated indefinite array', fromHex('9f0101')],
    ['not an array (map)', encode(new Map([[1, 1]]))],
    ['not an array (integer)', encode(1)],
    ['an unknown type (9)', encode([9, 1, pack])],
    ['a type that is a text string', encode(['1', 1, pack])],
    ['a negative type', encode([-1, 1, pack])],
    ['a hub-to-device type (ACK) from the device', encode([2, 1])],
    ['seq as a text string', encode([1, '7', pack])],
    ['a negative seq', encode([1, -7, pack])],
    ['seq = 2^32', encode([1, 4294967296, pack])],
    ['seq as a float', encode([1, float64(7.5), pack])],
    ['a TELEMETRY without its pack', encode([1, 7])],
    ['tag 1 (epoch time) on bt', telemetry(1, [rec({ n: 'x', v: 1, bt: new Tagged(1, 1764000000) })])],
    ['tag 55799 (self-described CBOR) around the message', encode(new Tagged(55799, [1, 1, pack]))],
    ['tag 105 (cbor-x record definition)', encode([1, 1, [new Tagged(105, [['n', 'v'], 'x', 1])]])],
    ['tag 57344 (cbor-x record reference)', encode([1, 1, [new Tagged(57344, ['x', 1])]])],
    ['tag 28 (shared value, structured clone)', encode([1, 1, new Tagged(28, pack)])],
    ['tag 64 (typed array) as vd', telemetry(1, [rec({ n: 'x', vd: new Tagged(64, Uint8Array.from([1])) })])],
    ['tag 2 (bignum) as v', telemetry(1, [rec({ n: 'x', v: new Tagged(2, Uint8Array.from([1, 0])) })])],
    ['nesting 17 levels deep', withDepth(17, 1)],
  ];

  it.each(invalid)('closes with 1007 and a short reason on %s', async (_what, bytes) => {
    const closed = await sendAndExpectClose(hub, bytes);
    expect(closed.code).toBe(1007);
    expect(closed.reason.length).toBeGreaterThan(0);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
  });

  it('accepts nesting 16 levels deep: ACK 0 (the deep part is under an unknown label, ignored), no close', async () => {
    const id = newId('deep');
    const d = await enrolled(hub, id);
    d.send(withDepth(16, 16));
    expect((await d.ack(16)).code).toBe(0);
    expect(d.isOpen).toBe(true);
    expect((await telemetryRows(hub, id)).map((r) => [r.name, r.value])).toEqual([['deep', 1]]);
    await d.close();
  });

  it('loses nothing that was acknowledged before a 1007', async () => {
    const id = newId('keep');
    const d = await enrolled(hub, id);
    d.sendTelemetry(1, [rec({ n: 'kept', v: 7 })]);
    expect((await d.ack(1)).code).toBe(0);
    d.send(fromHex('ff'));
    expect((await d.waitClosed()).code).toBe(1007);
    const rows = await telemetryRows(hub, id);
    expect(rows.map((r) => [r.name, r.value])).toEqual([['kept', 7]]);
  });

  it('does not close the connection on a RESULT or a REPORTED (section 7 vectors)', async () => {
    const d = await enrolled(hub);
    d.send(fromHex(V_RESULT));
    d.send(fromHex(V_REPORTED));
    d.sendTelemetry(3, [rec({ n: 'still', v: 1 })]);
    expect((await d.ack(3)).code).toBe(0);
    expect(d.isOpen).toBe(true);
    await d.close();
  });
});

// ============================================================== section 4

describe('section 4: liveness', () => {
  it('terminates a device that does not answer pings by the next ping, without a close handshake, and records ping-timeout; a device that answers stays', async () => {
    // Its own hub: a short ping interval would put every other test's connections at the mercy of a
    // busy machine. Timing is asserted in pings, not milliseconds, so a slow machine cannot fail it.
    const own = await startHub({ PULSEWIRE_PING_INTERVAL_MS: '1000' });
    try {
      const id = newId('mute');
      const good = await enrolled(own);
      let goodPings = 0;
      good.ws.on('ping', () => goodPings++);
      const res = await rawHandshake(own.deviceUrl, authHeaders(id, enrollmentSecret(ENROLLMENT_KEY, id)));
      expect(res.status).toBe(101);
      if (!res.upgraded) return;
      const mute = new RawDevice(res.socket, res.head);
      const ended = await Promise.race([mute.ended.then(() => true), sleep(EVENT_CEILING_MS).then(() => false)]);
      mute.destroy();
      expect(ended, 'the mute device was not terminated').toBe(true);
      // "not answered with a pong by the next ping": the ping it ignored, and at most that next one.
      const pings = mute.frames.filter((f) => f.opcode === 0x9).length;
      expect(pings === 1 || pings === 2, `${pings} pings before termination`).toBe(true);
      expect(mute.frames.filter((f) => f.opcode === 0x8)).toEqual([]); // no close frame
      const status = await statusPoints(own, id, 2);
      expect(status.map((s) => [s.online, s.reason])).toEqual([
        [true, 'connected'],
        [false, 'ping-timeout'],
      ]);
      // The device that answers pings has been through two more rounds since, and still works.
      const seen = goodPings;
      await until(() => (goodPings >= seen + 2 ? true : undefined), EVENT_CEILING_MS);
      expect(good.isOpen).toBe(true);
      good.sendTelemetry(1, [rec({ n: 'alive', v: 1 })]);
      expect((await good.ack(1)).code).toBe(0);
      await good.close();
    } finally {
      await own.close();
    }
  });

  it('answers a device ping with a pong carrying the same payload', async () => {
    const d = await enrolled(hub);
    const payload = Buffer.from('are-you-there');
    const pong = new Promise<Buffer>((resolve) => d.ws.once('pong', (data) => resolve(data)));
    d.ws.ping(payload);
    const got = await Promise.race([pong, sleep(EVENT_CEILING_MS).then(() => null)]);
    expect(got).toEqual(payload);
    await d.close();
  });

  it('records online/offline in device_status with reasons connected and closed by device', async () => {
    const id = newId('status');
    const d = await enrolled(hub, id);
    const online = await statusPoints(hub, id, 1);
    expect(online.map((s) => [s.online, s.reason])).toEqual([[true, 'connected']]);
    await d.close(1000);
    const both = await statusPoints(hub, id, 2);
    expect(both).toHaveLength(2);
    expect(both[1]!.online).toBe(false);
    expect(both[1]!.reason).toMatch(/^closed[ -_]by[ -_]device$/);
    const fields = Object.fromEntries((await hub.db.query('SHOW FIELD KEYS FROM device_status')).map((f) => [f.fieldKey, f.fieldType]));
    expect(fields).toEqual({ online: 'boolean', reason: 'string' });
  });
});

// ============================================================== section 5

describe('section 5: closing', () => {
  it('echoes a normal closure 1000 from the device', async () => {
    const d = await enrolled(hub);
    const closed = await d.close(1000, 'bye');
    expect(closed.code).toBe(1000);
  });

  it('closes with 1008 when the device is deleted (credentials revoked)', async () => {
    const id = newId('revoke');
    const secret = await register(hub, id);
    const d = await connectDevice(hub.deviceUrl, id, secret);
    // The README does not name DELETE's status; 204 No Content is what the hub answers.
    expect((await hub.api('DELETE', `/v1/devices/${id}`)).status).toBe(204);
    const closed = await d.waitClosed();
    expect(closed.code).toBe(1008);
    const r = await refusal(connectDevice(hub.deviceUrl, id, secret));
    expect(r.status).toBe(401);
  });

  it('closes every device with 1001 on hub shutdown and records the reason', async () => {
    const own = await startHub();
    const id = newId('bye');
    const d = await enrolled(own, id);
    await own.close();
    const closed = await d.waitClosed();
    expect(closed.code).toBe(1001);
    const status = await statusRows(own, id);
    expect(status.map((s) => s.online)).toEqual([true, false]);
    expect(status[1]!.reason).toMatch(/^hub[ -_]shutdown$/);
  });
});
