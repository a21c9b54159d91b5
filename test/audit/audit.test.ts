/**
 * The audit log on a real hub: a command's whole life through the API, the
 * registry, desired state, jobs and keys each leave an entry naming the key,
 * the action, the target, the outcome and the caller's address; a call refused
 * for its scope is recorded, one without a valid key and every read are not;
 * GET /v1/audit filters and pages; each entry is also in InfluxDB as
 * measurement `audit`; entries past PULSEWIRE_AUDIT_RETENTION_MS are pruned.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { operatorRequest, restartableHub, startHub, type TestHub } from '../support/hub.js';
import { until } from '../support/wait.js';

type Entry = { id: string; at: string; keyId: string; key: string; action: string; target: string; outcome: string; status: number; source: string; detail: string | null };

describe('audit log', () => {
  let hub: TestHub;
  let operate: { id: string; key: string };
  let reader: { id: string; key: string };
  const audit = async (query = ''): Promise<{ entries: Entry[]; nextCursor: string | null }> => {
    const res = await hub.api('GET', `/v1/audit${query}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  beforeAll(async () => {
    hub = await startHub();
    operate = (await hub.api('POST', '/v1/keys', { name: 'ops-console', scope: 'operate' })).body;
    reader = (await hub.api('POST', '/v1/keys', { name: 'wallboard', scope: 'read' })).body;
  });
  afterAll(async () => { await hub?.close(); });

  it('records a command\'s life through the API with its key, target, outcome and source; a refusal for scope too; reads and unauthenticated calls not', async () => {
    expect((await hub.api('PUT', '/v1/devices/audit-dev-1')).status).toBe(201);
    const created = await operatorRequest(hub.baseUrl, 'POST', '/v1/devices/audit-dev-1/commands', { name: 'reboot' }, operate.key);
    expect(created.status).toBe(202);
    const cid = created.body.id as string;
    expect((await operatorRequest(hub.baseUrl, 'DELETE', `/v1/devices/audit-dev-1/commands/${cid}`, undefined, operate.key)).status).toBe(200);
    expect((await operatorRequest(hub.baseUrl, 'DELETE', `/v1/devices/audit-dev-1/commands/${cid}`, undefined, operate.key)).status).toBe(409);
    expect((await operatorRequest(hub.baseUrl, 'POST', '/v1/devices/audit-dev-1/commands', { name: 'wipe' }, reader.key)).status).toBe(403);
    expect((await operatorRequest(hub.baseUrl, 'POST', '/v1/devices/audit-dev-1/commands', { name: 'wipe' }, 'pwk_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(401);
    expect((await operatorRequest(hub.baseUrl, 'GET', `/v1/devices/audit-dev-1/commands/${cid}`, undefined, operate.key)).status).toBe(200);

    const { entries } = await audit('?target=audit-dev-1');
    expect(entries.map((e) => [e.action, e.key, e.target, e.outcome, e.status, e.detail])).toEqual([
      // Refused before its body was read: no detail.
      ['command.create', 'wallboard', 'audit-dev-1', 'PW_ERR_SCOPE', 403, null],
      ['command.cancel', 'ops-console', `audit-dev-1/${cid}`, 'PW_ERR_COMMAND_NOT_QUEUED', 409, null],
      ['command.cancel', 'ops-console', `audit-dev-1/${cid}`, 'ok', 200, null],
      ['command.create', 'ops-console', `audit-dev-1/${cid}`, 'ok', 202, 'reboot'],
      ['device.register', 'operator-token', 'audit-dev-1', 'ok', 201, null],
    ]);
    for (const e of entries) expect(e).toMatchObject({ source: '127.0.0.1', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(entries[3]!.keyId).toBe(operate.id);
    expect(entries[4]!.keyId).toBe('bootstrap');
  });

  it('records desired state, jobs, device removal and keys; filters by key and action; pages by cursor', async () => {
    await hub.api('PUT', '/v1/devices/audit-dev-2');
    const patch = await fetch(`${hub.baseUrl}/v1/devices/audit-dev-2/desired`, {
      method: 'PATCH', headers: { authorization: `Bearer ${operate.key}`, 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ led: 'on' }),
    });
    expect(patch.status).toBe(200);
    const job = await operatorRequest(hub.baseUrl, 'POST', '/v1/jobs', { command: { name: 'update' }, target: { ids: ['audit-dev-2'] } }, operate.key);
    expect(job.status).toBe(201);
    await operatorRequest(hub.baseUrl, 'POST', `/v1/jobs/${job.body.id}/cancel`, undefined, operate.key);
    expect((await hub.api('DELETE', '/v1/devices/audit-dev-2')).status).toBe(204);
    const temp = (await hub.api('POST', '/v1/keys', { name: 'temp', scope: 'read' })).body as { id: string };
    await hub.api('DELETE', `/v1/keys/${temp.id}`);

    const mine = (await audit('?key=ops-console&limit=100')).entries;
    expect(mine.filter((e) => e.target.startsWith('audit-dev-2') || e.target === job.body.id).map((e) => `${e.action} ${e.target} ${e.outcome}`)).toEqual([
      `job.cancel ${job.body.id} ok`,
      `job.create ${job.body.id} ok`,
      'desired.patch audit-dev-2 ok',
    ]);
    expect((await audit('?action=device.remove')).entries.map((e) => e.target)).toEqual(['audit-dev-2']);
    expect((await audit(`?target=${temp.id}`)).entries.map((e) => `${e.action} ${e.outcome} ${e.detail ?? ''}`)).toEqual(['key.revoke ok ', 'key.create ok temp (read)']);

    // Pages of two, newest first, together the whole log.
    const all = (await audit('?limit=1000')).entries.map((e) => e.id);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { entries: Entry[]; nextCursor: string | null } = await audit(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      paged.push(...page.entries.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
    expect(all.length).toBeGreaterThan(10);
    // Keys below admin cannot read it.
    expect((await operatorRequest(hub.baseUrl, 'GET', '/v1/audit', undefined, operate.key)).status).toBe(403);
    expect((await hub.api('GET', '/v1/audit?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z')).status).toBe(400);
  });

  it('writes each entry to InfluxDB as measurement audit, tagged by key, action and outcome', async () => {
    const rows = await until(async () => {
      const found = await hub.db.query<{ time: number; key: string; action: string; outcome: string; target: string; source: string; status: number }>(
        `SELECT * FROM audit WHERE action = 'command.cancel'`,
      );
      return found.length >= 2 ? found : undefined;
    });
    expect(rows.map((r) => [r.key, r.outcome, r.status, r.source]).sort()).toEqual([
      ['ops-console', 'PW_ERR_COMMAND_NOT_QUEUED', 409, '127.0.0.1'],
      ['ops-console', 'ok', 200, '127.0.0.1'],
    ]);
  });
});

describe('audit retention', () => {
  it('a hub starting prunes entries older than PULSEWIRE_AUDIT_RETENTION_MS and keeps the rest', async () => {
    const hubs = await restartableHub('audit-retention');
    try {
      const first = await hubs.start();
      const log = new AuditLog({ bucket: first.app.stores.audit });
      const base = { keyId: 'bootstrap', key: 'operator-token', action: 'device.register', outcome: 'ok', status: 201, source: '127.0.0.1' };
      await log.record({ ...base, target: 'old-dev', at: Date.now() - 2 * 3600_000 });
      await log.record({ ...base, target: 'new-dev' });
      await first.close();
      const second = await hubs.start({ PULSEWIRE_AUDIT_RETENTION_MS: String(3600_000) });
      const targets = async () => ((await second.api('GET', '/v1/audit')).body.entries as Entry[]).map((e) => e.target);
      await until(async () => (!(await targets()).includes('old-dev') ? true : undefined));
      expect(await targets()).toEqual(['new-dev']);
    } finally {
      await hubs.close();
    }
  });
});
