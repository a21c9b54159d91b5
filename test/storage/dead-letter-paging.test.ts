/**
 * GET /v1/dead-letters with many letters, made the real way: a device's
 * readings that InfluxDB refuses (a field type conflict), one letter per
 * message. Pages come newest first (ids in arrival order, descending), the
 * cursor of one page starts the next with no gap and no repeat, the last
 * page says so (nextCursor null, no empty page after it), and ids go on
 * across a hub restart.
 *
 * Every point is written at one absolute time T, the conflicting string
 * first: they all land in the same shard whatever day it is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTelemetry } from '../../src/protocol/encode.js';
import { senmlRecord } from '../../src/protocol/senml-labels.js';
import { TestDevice } from '../support/device-client.js';
import { restartableHub, type TestHub } from '../support/hub.js';
import { waitFor } from '../support/wait.js';

const LETTERS = 25;
const T_S = Math.floor(Date.now() / 1000) - 3600;

type Letter = { id: number; at: string; deviceId: string; reason: string; points: { tags: Record<string, string>; fields: Record<string, unknown>; timestamp: string }[] };
type Page = { deadLetters: Letter[]; nextCursor: string | null };

describe('dead-letter paging', () => {
  let hubs: Awaited<ReturnType<typeof restartableHub>>;
  let hub: TestHub;

  /** Sends messages `seqs`, one refused reading each (name sN, value N, time T), and waits for their letters. */
  const refuse = async (deviceId: string, seqs: number[], lettersAfter: number) => {
    const device = await TestDevice.connect(hub.deviceUrl, { id: deviceId });
    for (const seq of seqs) device.send(encodeTelemetry(seq, [senmlRecord({ n: `s${seq}`, v: seq, t: T_S })]));
    for (const seq of seqs) expect(await device.next()).toEqual({ type: 2, seq });
    await device.close();
    await waitFor(() => hub.app.spool.deadLetters.count === lettersAfter && hub.app.spool.stats.entries === 0, {
      timeoutMs: 30_000, what: `${lettersAfter} dead letters`,
    });
  };
  const page = async (query: string): Promise<Page> => {
    const res = await hub.api('GET', `/v1/dead-letters${query}`);
    expect(res.status).toBe(200);
    return res.body as Page;
  };
  /** Follows the cursors from the first page; returns each page. */
  const allPages = async (limit: number): Promise<Page[]> => {
    const pages = [await page(`?limit=${limit}`)];
    while (pages.at(-1)!.nextCursor !== null) {
      expect(pages.length).toBeLessThan(100);
      pages.push(await page(`?limit=${limit}&cursor=${pages.at(-1)!.nextCursor}`));
    }
    return pages;
  };

  beforeAll(async () => {
    hubs = await restartableHub('dead-letter-paging');
    hub = await hubs.start();
    // `value` is a string in T's shard from now on: every float reading there is refused.
    await hub.db.connection.influx.writePoints(
      [{ measurement: 'telemetry', tags: { device: 'seed', name: 'seed' }, fields: { value: 'text' }, timestamp: String(T_S * 1_000_000) }],
      { precision: 'u' },
    );
    await refuse('dlp-1', Array.from({ length: LETTERS }, (_, i) => i), LETTERS);
  });
  afterAll(async () => { await hubs?.close(); });

  it('holds one letter per refused message, with the point, the device and InfluxDB\'s reason', async () => {
    const { deadLetters, nextCursor } = await page('?limit=1000');
    expect(nextCursor).toBeNull();
    expect(deadLetters).toHaveLength(LETTERS);
    for (const letter of deadLetters) {
      expect(letter.deviceId).toBe('dlp-1');
      expect(letter.reason).toMatch(/field type conflict/);
      expect(letter.points).toHaveLength(1);
      const [point] = letter.points;
      expect(point!.timestamp).toBe(String(T_S * 1_000_000));
      expect(point!.fields).toEqual({ value: Number(point!.tags.name!.slice(1)) });
    }
    // Each message exactly once.
    expect(deadLetters.map((l) => Number(l.points[0]!.tags.name!.slice(1))).sort((a, b) => a - b)).toEqual(Array.from({ length: LETTERS }, (_, i) => i));
    const metrics = (await hub.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(new RegExp(`^pulsewire_dead_letters ${LETTERS}$`, 'm'));
  });

  it('pages newest first; each cursor continues where the last page ended, and the last page has no cursor', async () => {
    const whole = (await page('?limit=1000')).deadLetters;
    // Ids count arrivals from 1 in a fresh data dir: newest first is LETTERS..1, and `at` never increases.
    expect(whole.map((l) => l.id)).toEqual(Array.from({ length: LETTERS }, (_, i) => LETTERS - i));
    for (let i = 1; i < whole.length; i++) expect(Date.parse(whole[i]!.at)).toBeLessThanOrEqual(Date.parse(whole[i - 1]!.at));

    const bySeven = await allPages(7);
    expect(bySeven.map((p) => p.deadLetters.length)).toEqual([7, 7, 7, 4]);
    expect(bySeven.map((p) => p.nextCursor)).toEqual(['19', '12', '5', null]);
    expect(bySeven.flatMap((p) => p.deadLetters)).toEqual(whole);

    // A count that divides evenly: the fifth page is the last, no empty sixth page.
    const byFive = await allPages(5);
    expect(byFive.map((p) => p.deadLetters.length)).toEqual([5, 5, 5, 5, 5]);
    expect(byFive.at(-1)!.nextCursor).toBeNull();
    expect(byFive.flatMap((p) => p.deadLetters)).toEqual(whole);

    const exact = await page(`?limit=${LETTERS}`);
    expect(exact.deadLetters).toEqual(whole);
    expect(exact.nextCursor).toBeNull();
    expect(await page('?cursor=1')).toEqual({ deadLetters: [], nextCursor: null });
    expect((await page('?cursor=13&limit=2')).deadLetters.map((l) => l.id)).toEqual([12, 11]);
  });

  it('refuses a limit outside 1..1000 and a cursor that is not a number', async () => {
    for (const query of ['?limit=0', '?limit=1001', '?cursor=abc', '?cursor=-1', '?limit=5&after=3']) {
      const res = await hub.api('GET', `/v1/dead-letters${query}`);
      expect([query, res.status, res.body.error?.code]).toEqual([query, 400, 'PW_ERR_BAD_REQUEST']);
    }
  });

  it('numbers new letters after the old ones across a restart, so they come first', async () => {
    await hub.close();
    hub = await hubs.start();
    expect(hub.app.spool.deadLetters.count).toBe(LETTERS);
    await refuse('dlp-2', [100, 101, 102], LETTERS + 3);
    const first = await page('?limit=4');
    expect(first.deadLetters.map((l) => [l.id, l.deviceId])).toEqual([[28, 'dlp-2'], [27, 'dlp-2'], [26, 'dlp-2'], [25, 'dlp-1']]);
    expect(first.nextCursor).toBe('25');
    const all = (await allPages(10)).flatMap((p) => p.deadLetters);
    expect(all.map((l) => l.id)).toEqual(Array.from({ length: LETTERS + 3 }, (_, i) => LETTERS + 3 - i));
  });
});
