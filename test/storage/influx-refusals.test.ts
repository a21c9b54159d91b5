/**
 * What the hub does when InfluxDB says no, against a real influxd of this
 * file's own with `auth-enabled = true` and a small `max-body-size`:
 *
 * - 401 (no such user), 403 (a user without the write privilege) and 404
 *   (the database was dropped) are the hub's problem, not the device's
 *   (storage/influx-errors.ts): the readings stay in the spool, nothing is
 *   dead-lettered, and once the cause is fixed they are delivered, once.
 * - 413 (a request over max-body-size) is a refusal of points: an entry that
 *   is only too big as a whole is stored point by point, nothing set aside;
 *   a point too big on its own goes to the dead letters with InfluxDB's
 *   reason (spool-drainer.ts #settleRejected).
 *
 * "Stays in the spool" is only decided when a drain round gives up (after
 * the writer's own 5 s of retries), so each case waits for such a round, by
 * the drainer's counter, not by a clock.
 *
 * Readings carry absolute times from T on; nothing is read by now().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyServerOptions } from 'fastify';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { TestDevice } from '../support/device-client.js';
import { startHub, type TestHub } from '../support/hub.js';
import { startPrivateInfluxd, type PrivateInfluxd } from '../support/private-influxd.js';
import { waitFor } from '../support/wait.js';

const MAX_BODY_BYTES = 1000;
const ADMIN = { user: 'admin', password: 'admin-secret' };
const WRITER = { user: 'writer', password: 'writer-secret' };
const T_S = Math.floor(Date.now() / 1000) - 600;

let influxd: PrivateInfluxd;

const basicAuth = (who: { user: string; password: string }) => `Basic ${Buffer.from(`${who.user}:${who.password}`).toString('base64')}`;

/** One InfluxQL statement as the admin. */
async function admin(q: string): Promise<any> {
  const res = await fetch(`${influxd.url}/query`, {
    method: 'POST',
    headers: { authorization: basicAuth(ADMIN), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ q, epoch: 'u' }),
  });
  const body = (await res.json()) as any;
  if (res.status !== 200 || body.results?.[0]?.error) throw new Error(`${q}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** [time µs, value] of one device's telemetry in `db`, oldest first. */
async function stored(db: string, deviceId: string, field = 'value'): Promise<[number, unknown][]> {
  const body = await admin(`SELECT "${field}" FROM "${db}"."autogen"."telemetry" WHERE "device" = '${deviceId}' ORDER BY time`);
  return body.results[0].series?.[0]?.values ?? [];
}

/** What influxd answers this exact write, to show the case is the one named (401, 403, 404, 413). */
async function probeWrite(db: string, body: string, who?: { user: string; password: string }): Promise<number> {
  const res = await fetch(`${influxd.url}/write?db=${db}&precision=u`, {
    method: 'POST', body, headers: who ? { authorization: basicAuth(who) } : {},
  });
  await res.arrayBuffer();
  return res.status;
}

/** A hub on `db` of the private influxd, its warnings kept (the writer logs InfluxDB's answer). */
async function hubOn(db: string, who: { user: string; password: string }): Promise<{ hub: TestHub; log: string[] }> {
  const log: string[] = [];
  const logger: FastifyServerOptions['logger'] = { level: 'warn', stream: { write: (line: string) => { log.push(line); } } };
  const url = `http://${encodeURIComponent(who.user)}:${encodeURIComponent(who.password)}@${new URL(influxd.url).host}/${db}`;
  const hub = await startHub({ PULSEWIRE_SHUTDOWN_TIMEOUT_MS: '2000' }, { influxUrl: url, logger });
  return { hub, log };
}

/** Sends one message per value (reading `name` = value at T + i), each must get ACK 0. */
async function sendReadings(hub: TestHub, deviceId: string, values: number[], firstSeq = 0): Promise<void> {
  const device = await TestDevice.connect(hub.deviceUrl, { id: deviceId });
  values.forEach((value, i) => device.send(encodeTelemetry(firstSeq + i, [senmlRecord({ n: 'level', v: value, t: T_S + value })])));
  for (let i = 0; i < values.length; i++) expect(await device.next()).toEqual({ type: 2, seq: firstSeq + i });
  await device.close();
}

/** The telemetry values of `deviceId` still in the hub's spool. */
function spooledValues(hub: TestHub, deviceId: string): unknown[] {
  return hub.app.spool.peek(1_000_000)
    .filter((entry) => entry.deviceId === deviceId)
    .flatMap((entry) => entry.points.filter((p) => p.measurement === 'telemetry').map((p) => p.fields!.value));
}

/**
 * Waits until the hub has logged InfluxDB's `answer` and a drain round has
 * given up after it, or (the hub getting it wrong) dead-lettered something.
 */
async function roundFailedWith(hub: TestHub, log: string[], answer: RegExp): Promise<void> {
  const deadLettered = () => hub.app.spool.deadLetterCount > 0;
  await waitFor(() => deadLettered() || log.some((line) => answer.test(line)), { timeoutMs: 30_000, what: `the hub saw ${answer}` });
  const retries = hub.app.drainer.stats.retries;
  await waitFor(() => deadLettered() || hub.app.drainer.stats.retries > retries, { timeoutMs: 30_000, what: 'a drain round gave up' });
  expect(hub.app.spool.deadLetterCount, 'dead-lettered instead of kept in the spool').toBe(0);
  expect(log.filter((line) => /InfluxDB write failed/.test(line)).at(-1)).toMatch(answer);
}

/** Each case waits for drain rounds of 5 s or more; generous for a busy machine. */
const CASE_TIMEOUT_MS = 120_000;

beforeAll(async () => {
  influxd = await startPrivateInfluxd({ authEnabled: true, maxBodySize: MAX_BODY_BYTES });
  // With auth on and no user yet, influxd takes exactly this statement without credentials.
  const created = await fetch(`${influxd.url}/query`, {
    method: 'POST', body: new URLSearchParams({ q: `CREATE USER ${ADMIN.user} WITH PASSWORD '${ADMIN.password}' WITH ALL PRIVILEGES` }),
  });
  expect(created.status).toBe(200);
});
afterAll(async () => { await influxd?.stop(); });

describe.concurrent('InfluxDB refusing the hub', () => {
  it('401 then 403: keeps every reading spooled and dead-letters nothing; delivers them once the user may write', async () => {
    const db = 'refused_auth';
    await admin(`CREATE DATABASE ${db}`);
    const line = `telemetry,device=probe,name=p value=1 ${T_S * 1_000_000}`;
    const { hub, log } = await hubOn(db, WRITER);
    try {
      expect(await probeWrite(db, line, WRITER)).toBe(401);
      await sendReadings(hub, 'auth-1', [0, 1, 2, 3, 4]);
      await roundFailedWith(hub, log, /HTTP 401/);
      expect(spooledValues(hub, 'auth-1')).toEqual([0, 1, 2, 3, 4]);
      expect(hub.app.spool.deadLetterCount).toBe(0);
      expect(await stored(db, 'auth-1')).toEqual([]);

      await admin(`CREATE USER ${WRITER.user} WITH PASSWORD '${WRITER.password}'`);
      await admin(`GRANT READ ON ${db} TO ${WRITER.user}`);
      expect(await probeWrite(db, line, WRITER)).toBe(403);
      await roundFailedWith(hub, log, /HTTP 403/);
      expect(spooledValues(hub, 'auth-1')).toEqual([0, 1, 2, 3, 4]);
      expect(hub.app.spool.deadLetterCount).toBe(0);

      await admin(`GRANT WRITE ON ${db} TO ${WRITER.user}`);
      await waitFor(() => hub.app.spool.stats.entries === 0, { timeoutMs: 30_000, what: 'spool drained after GRANT WRITE' });
      expect(await stored(db, 'auth-1')).toEqual([0, 1, 2, 3, 4].map((v) => [(T_S + v) * 1_000_000, v]));
      expect(hub.app.spool.deadLetterCount).toBe(0);
      expect(hub.app.drainer.stats.deadLetterPoints).toBe(0);
    } finally {
      await hub.close();
    }
  }, CASE_TIMEOUT_MS);

  it('404 (database dropped under the hub): keeps the readings spooled, dead-letters nothing, delivers them when it is back', async () => {
    const db = 'refused_dropped';
    const { hub, log } = await hubOn(db, ADMIN);
    try {
      // The hub creates its database at start; a first reading proves the path works.
      await sendReadings(hub, 'gone-1', [0]);
      await waitFor(async () => (await stored(db, 'gone-1')).length === 1, { timeoutMs: 30_000, what: 'first reading stored' });
      await admin(`DROP DATABASE ${db}`);
      expect(await probeWrite(db, `telemetry,device=probe,name=p value=1 ${T_S * 1_000_000}`, ADMIN)).toBe(404);

      await sendReadings(hub, 'gone-1', [1, 2, 3], 1);
      await roundFailedWith(hub, log, /HTTP 404: database not found/);
      expect(spooledValues(hub, 'gone-1')).toEqual([1, 2, 3]);
      expect(hub.app.spool.deadLetterCount).toBe(0);

      await admin(`CREATE DATABASE ${db}`);
      await waitFor(() => hub.app.spool.stats.entries === 0, { timeoutMs: 30_000, what: 'spool drained after CREATE DATABASE' });
      // Reading 0 went with the dropped database; 1..3 were kept and arrive once.
      expect(await stored(db, 'gone-1')).toEqual([1, 2, 3].map((v) => [(T_S + v) * 1_000_000, v]));
      expect(hub.app.spool.deadLetterCount).toBe(0);
    } finally {
      await hub.close();
    }
  }, CASE_TIMEOUT_MS);

  it('413: an entry too big only as a whole is stored point by point; a point too big alone is dead-lettered with the reason', async () => {
    const db = 'refused_big';
    const { hub } = await hubOn(db, ADMIN);
    const device = await TestDevice.connect(hub.deviceUrl, { id: 'big-1' });
    try {
      await waitFor(async () => JSON.stringify(await admin('SHOW DATABASES')).includes(db), { timeoutMs: 30_000, what: 'database created' });
      const huge = 'x'.repeat(1024); // the longest vs the protocol allows; its line alone is over MAX_BODY_BYTES
      const hugeLine = `telemetry,device=big-1,name=huge text="${huge}" ${T_S * 1_000_000}`;
      expect(hugeLine.length).toBeGreaterThan(MAX_BODY_BYTES);
      expect(await probeWrite(db, hugeLine, ADMIN)).toBe(413);

      // 30 small readings: about 1.7 kB of line protocol together, 60 bytes each.
      const small = Array.from({ length: 30 }, (_, i) => senmlRecord({ n: `n${i}`, v: i, t: T_S + i }));
      device.send(encodeTelemetry(0, small));
      device.send(encodeTelemetry(1, [senmlRecord({ n: 'huge', vs: huge, t: T_S })]));
      // Mixed: three small readings stored, the huge one set aside.
      device.send(encodeTelemetry(2, [
        senmlRecord({ n: 'm0', v: 100, t: T_S + 100 }), senmlRecord({ n: 'huge', vs: huge, t: T_S + 101 }),
        senmlRecord({ n: 'm1', v: 102, t: T_S + 102 }), senmlRecord({ n: 'm2', v: 103, t: T_S + 103 }),
      ]));
      for (const seq of [0, 1, 2]) expect(await device.next()).toEqual({ type: 2, seq });
      await waitFor(() => hub.app.spool.stats.entries === 0, { timeoutMs: 30_000, what: 'spool drained' });

      expect((await stored(db, 'big-1')).map(([time, value]) => [time / 1_000_000 - T_S, value]))
        .toEqual([...Array.from({ length: 30 }, (_, i) => [i, i]), [100, 100], [102, 102], [103, 103]]);
      expect(await stored(db, 'big-1', 'text')).toEqual([]);

      const letters = (await hub.api('GET', '/v1/dead-letters')).body.deadLetters as any[];
      expect(letters).toHaveLength(2);
      for (const letter of letters) {
        expect(letter.deviceId).toBe('big-1');
        expect(letter.reason).toMatch(/Request Entity Too Large/);
        expect(letter.points).toHaveLength(1);
        expect(letter.points[0].fields).toEqual({ text: huge });
      }
      expect(letters.map((l) => l.points[0].timestamp).sort()).toEqual([T_S, T_S + 101].map((s) => String(s * 1_000_000)));
      expect(hub.app.drainer.stats.deadLetterPoints).toBe(2);
    } finally {
      await device.close();
      await hub.close();
    }
  }, CASE_TIMEOUT_MS);
});
