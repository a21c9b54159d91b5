/**
 * The audit log's contract on both backends: entries come back newest first,
 * filtered and paged by cursor without gaps or repeats, bounded by a time
 * window, kept across a reopen, and pruned past the retention (only those).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { BACKENDS, type StoresHandle } from '../support/stores.js';

const T0 = 1_800_000_000_000;

function entry(i: number, over: Partial<AuditEntry> = {}): Omit<AuditEntry, 'id'> {
  return {
    at: T0 + i * 1000, keyId: i % 2 ? 'aaaaaaaaaaaaaaaa' : 'bootstrap', key: i % 2 ? 'ops' : 'operator-token',
    action: i % 3 ? 'command.create' : 'desired.patch', target: `dev-${i % 4}/c${i}`, outcome: i === 7 ? 'PW_ERR_SCOPE' : 'ok',
    status: i === 7 ? 403 : 202, source: '127.0.0.1', ...over,
  };
}

describe.each(BACKENDS)('audit log on $name', (backend) => {
  let handle: StoresHandle;
  beforeEach(async () => { handle = await backend.open(); });
  afterEach(async () => { await handle.close(); });

  it('pages newest first by cursor, with filters and a time window, and keeps entries across a reopen', async () => {
    const log = new AuditLog({ bucket: handle.stores.audit });
    // Written out of order: the order comes from the entry's time, not from when it was stored.
    for (const i of [3, 0, 9, 1, 5, 2, 8, 4, 7, 6]) await log.record(entry(i));
    const reopened = new AuditLog({ bucket: (await handle.reopen()).audit });
    const times = (entries: AuditEntry[]) => entries.map((e) => (e.at - T0) / 1000);

    const seen: number[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await reopened.page({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...times(page.entries));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);

    expect(times((await reopened.page({ limit: 100, key: 'ops' })).entries)).toEqual([9, 7, 5, 3, 1]);
    expect(times((await reopened.page({ limit: 100, action: 'desired.patch' })).entries)).toEqual([9, 6, 3, 0]);
    expect(times((await reopened.page({ limit: 100, target: 'dev-1' })).entries)).toEqual([9, 5, 1]);
    expect(times((await reopened.page({ limit: 100, outcome: 'PW_ERR_SCOPE' })).entries)).toEqual([7]);
    expect(times((await reopened.page({ limit: 100, from: T0 + 2000, to: T0 + 6000 })).entries)).toEqual([5, 4, 3, 2]);
    const first = (await reopened.page({ limit: 100, keyId: 'bootstrap' })).entries.at(-1)!;
    expect(first).toMatchObject({ ...entry(0), id: expect.stringMatching(/^[0-9]{13}-[0-9a-f]{8}$/) });
  });

  it('prunes exactly the entries from before the cut', async () => {
    const log = new AuditLog({ bucket: handle.stores.audit });
    for (let i = 0; i < 6; i++) await log.record(entry(i));
    expect(await log.prune(T0 + 3000)).toBe(3);
    expect((await log.page({ limit: 100 })).entries.map((e) => (e.at - T0) / 1000)).toEqual([5, 4, 3]);
    expect(await log.prune(T0 + 3000)).toBe(0);
  });
});
