import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStore } from '../../src/jobs/job-store.js';
import type { JobView } from '../../src/jobs/types.js';
import { PROGRESS_EVERY_MS } from '../../src/jobs/job-runner.js';
import { openLmdbStores } from '../../src/stores/open-lmdb-stores.js';
import { encodeResult } from '../../src/protocol/encode.js';
import { LiveClient } from '../live/live-client.js';
import { TestDevice } from '../support/device-client.js';
import { OPERATOR_TOKEN, restartableHub, startHub, type TestHub } from '../support/hub.js';
import { sleep, until } from '../support/wait.js';

type Api = TestHub['api'];

async function register(hub: TestHub, ids: string[]): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  for (const id of ids) {
    const r = await hub.api('PUT', `/v1/devices/${id}`);
    expect(r.status).toBe(201);
    secrets.set(id, r.body.secret);
  }
  return secrets;
}

/** A device that answers every COMMAND with a final RESULT of `status` (1 succeeded, 2 failed); `commands` counts what it got. */
async function answering(hub: TestHub, id: string, secret: string, status: 1 | 2) {
  const device = await TestDevice.connect(hub.deviceUrl, { id, secret });
  const commands: string[] = [];
  // Through the device's own queue: a COMMAND can arrive in the same chunk as the handshake, before any listener of ours.
  const closed = device.closed.then(() => undefined);
  void (async () => {
    for (;;) {
      const message = await Promise.race([device.next(60_000).catch(() => undefined), closed]);
      if (!message) return;
      if (message.type !== 3) continue;
      commands.push(message.commandId);
      device.send(encodeResult(message.commandId, status));
    }
  })();
  // The job's online check reads the gateway's sessions: wait until the hub lists it online.
  await until(async () => ((await hub.api('GET', `/v1/devices/${id}`)).body.online ? true : undefined), 20_000);
  return { device, commands };
}

async function jobWhen(api: Api, id: string, ok: (job: JobView) => boolean, timeoutMs = 20_000): Promise<JobView> {
  return until(async () => {
    const r = await api('GET', `/v1/jobs/${id}`);
    return ok(r.body) ? (r.body as JobView) : undefined;
  }, timeoutMs);
}

async function jobCommands(api: Api, id: string, query = ''): Promise<{ id: string; deviceId: string; status: string; createdAt: string; jobId: string }[]> {
  const r = await api('GET', `/v1/jobs/${id}/commands${query}`);
  expect(r.status).toBe(200);
  return r.body.commands;
}

describe('fleet jobs', () => {
  let hub: TestHub;
  beforeAll(async () => { hub = await startHub(); });
  afterAll(async () => { await hub?.close(); });

  it('rolls out to a list of ids, one command each carrying the jobId, and completes when all answered', async () => {
    const ids = ['jid-1', 'jid-2', 'jid-3'];
    const secrets = await register(hub, ids);
    const devices = await Promise.all(ids.map((id) => answering(hub, id, secrets.get(id)!, 1)));
    const created = await hub.api('POST', '/v1/jobs', { command: { name: 'reboot', args: { delay: 1 } }, target: { ids: [...ids, 'jid-1'] }, rolloutPerSecond: 50 });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/jobs/${created.body.id}`);
    expect(created.body).toMatchObject({ status: 'in-progress', total: 3, rolloutPerSecond: 50, abortThresholdPct: 100, abortMinFinished: 10 });
    const done = await jobWhen(hub.api, created.body.id, (j) => j.status === 'completed');
    expect(done).toMatchObject({ total: 3, dispatched: 3, skipped: 0, counts: { succeeded: 3 } });
    expect(Date.parse(done.completedAt!)).toBeGreaterThanOrEqual(Date.parse(done.createdAt));
    const commands = await jobCommands(hub.api, created.body.id);
    expect(commands.map((c) => c.deviceId)).toEqual(ids);
    expect(commands.every((c) => c.jobId === created.body.id && c.status === 'succeeded')).toBe(true);
    expect(devices.map((d) => d.commands.length)).toEqual([1, 1, 1]);
    expect((await jobCommands(hub.api, created.body.id, '?status=failed'))).toEqual([]);
    const listed = await hub.api('GET', '/v1/jobs?status=completed&limit=10');
    expect(listed.body.jobs.map((j: JobView) => j.id)).toContain(created.body.id);
    await Promise.all(devices.map((d) => d.device.close()));
  });

  it('selects by prefix and, with onlineOnly, skips the devices offline at their turn', async () => {
    const secrets = await register(hub, ['pfx-a', 'pfx-b', 'pfx-c', 'other-pfx-d']);
    const online = [await answering(hub, 'pfx-a', secrets.get('pfx-a')!, 1), await answering(hub, 'pfx-c', secrets.get('pfx-c')!, 1)];
    const created = await hub.api('POST', '/v1/jobs', { command: { name: 'ping' }, target: { prefix: 'pfx-', onlineOnly: true }, rolloutPerSecond: 100 });
    expect(created.status).toBe(201);
    expect(created.body.total).toBe(3);
    const done = await jobWhen(hub.api, created.body.id, (j) => j.status === 'completed');
    expect(done).toMatchObject({ dispatched: 2, skipped: 1, counts: { succeeded: 2 } });
    const skipped = await hub.api('GET', `/v1/jobs/${created.body.id}/skipped`);
    expect(skipped.body.skipped).toEqual([{ deviceId: 'pfx-b', reason: expect.stringMatching(/offline/) }]);
    expect((await jobCommands(hub.api, created.body.id)).map((c) => c.deviceId)).toEqual(['pfx-a', 'pfx-c']);
    await Promise.all(online.map((d) => d.device.close()));
  });

  it('creates commands no faster than rolloutPerSecond, queueing them for offline devices', async () => {
    const ids = ['rate-0', 'rate-1', 'rate-2', 'rate-3', 'rate-4'];
    await register(hub, ids);
    const rate = 5;
    const created = await hub.api('POST', '/v1/jobs', { command: { name: 'slow-roll' }, target: { prefix: 'rate-' }, rolloutPerSecond: rate });
    await jobWhen(hub.api, created.body.id, (j) => j.dispatched === ids.length);
    const times = (await jobCommands(hub.api, created.body.id)).map((c) => Date.parse(c.createdAt)).sort((a, b) => a - b);
    expect(times).toHaveLength(ids.length);
    // Lower bounds only (a busy machine makes them later, never earlier): slot i starts i/rate after
    // the rollout, which starts after the job's createdAt; 2 ms for a timer's millisecond rounding.
    // (Measured from the first command instead, a late first command made the spread look too short.)
    const jobCreatedAt = Date.parse(created.body.createdAt);
    expect(times.map((t) => t - jobCreatedAt)).toEqual(times.map((_, i) => expect.toSatisfy((ms: number) => ms >= (i / rate) * 1000 - 2)));
    const job = (await hub.api('GET', `/v1/jobs/${created.body.id}`)).body as JobView;
    expect(job).toMatchObject({ status: 'in-progress', counts: { queued: ids.length } });
    expect((await hub.api('POST', `/v1/jobs/${created.body.id}/cancel`)).body.status).toBe('cancelled');
  });

  it('cancel stops the rollout and cancels the commands still queued; a second cancel is 409', async () => {
    // Slots are laid out from the start, so a stalled rollout catches up at once: 40 targets at 4/s
    // leave the cancel about 10 s to arrive before the last one, however busy the machine.
    const ids = Array.from({ length: 40 }, (_, i) => `cancel-${i}`);
    await register(hub, ids);
    const created = await hub.api('POST', '/v1/jobs', { command: { name: 'upgrade', args: { fw: '2.0' } }, target: { ids }, rolloutPerSecond: 4 });
    await jobWhen(hub.api, created.body.id, (j) => j.dispatched >= 2);
    const cancelled = await hub.api('POST', `/v1/jobs/${created.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', reason: 'cancelled by operator' });
    expect(Date.parse(cancelled.body.completedAt)).toBeGreaterThanOrEqual(Date.parse(cancelled.body.createdAt));
    const settled = await jobWhen(hub.api, created.body.id, (j) => (j.counts.cancelled ?? 0) === j.dispatched);
    expect(settled.dispatched).toBeLessThan(ids.length);
    // An absence: more than two slots at 4/s, in which a rollout still running would have created more.
    await sleep(600);
    const later = (await hub.api('GET', `/v1/jobs/${created.body.id}`)).body as JobView;
    expect(later.dispatched).toBe(settled.dispatched);
    const commands = await jobCommands(hub.api, created.body.id);
    expect(commands.every((c) => c.status === 'cancelled')).toBe(true);
    const one = await hub.api('GET', `/v1/devices/${commands[0]!.deviceId}/commands/${commands[0]!.id}`);
    expect(one.body.result).toBe(`job ${created.body.id} cancelled`);
    const again = await hub.api('POST', `/v1/jobs/${created.body.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('PW_ERR_JOB_FINISHED');
  });

  it('aborts when more than the threshold failed, cancels what is queued, and reports progress on the bus and the live stream', async () => {
    // 30 targets at 5/s: the abort (three round trips) has about 6 s before the rollout would be done.
    const ids = Array.from({ length: 30 }, (_, i) => `abort-${i}`);
    const secrets = await register(hub, ids);
    // The first three (in target order) answer failed; the rest are offline, so their commands wait in the queue.
    const failing = await Promise.all(ids.slice(0, 3).map((id) => answering(hub, id, secrets.get(id)!, 2)));
    const events: { job: JobView; at: number }[] = [];
    const off = hub.app.bus.on('job.progress', ({ job }) => events.push({ job, at: Date.now() }));
    const live = await LiveClient.connect(hub.baseUrl);
    await live.next((f) => f.type === 'snapshot');
    const created = await hub.api('POST', '/v1/jobs', {
      command: { name: 'flash' }, target: { prefix: 'abort-' }, rolloutPerSecond: 5, abortThresholdPct: 50, abortMinFinished: 3,
    });
    const aborted = await jobWhen(hub.api, created.body.id, (j) => j.status === 'aborted');
    expect(aborted.reason).toMatch(/3 of 3 finished commands failed \(100%\), more than abortThresholdPct 50/);
    expect(aborted.dispatched).toBeLessThan(ids.length);
    const settled = await jobWhen(hub.api, created.body.id, (j) => (j.counts.failed ?? 0) + (j.counts.cancelled ?? 0) === j.dispatched);
    expect(settled.counts.failed).toBe(3);
    await sleep(500); // an absence: no dispatch after the abort
    expect(((await hub.api('GET', `/v1/jobs/${created.body.id}`)).body as JobView).dispatched).toBe(settled.dispatched);

    const mine = events.filter((e) => e.job.id === created.body.id);
    expect(mine[0]!.job.status).toBe('in-progress');
    expect(mine.some((e) => e.job.status === 'aborted')).toBe(true);
    // Throttled: two events of the same status are at least PROGRESS_EVERY_MS apart (a lower bound; timers may be late, never early).
    for (let i = 1; i < mine.length; i++) {
      if (mine[i]!.job.status === mine[i - 1]!.job.status) expect(mine[i]!.at - mine[i - 1]!.at).toBeGreaterThanOrEqual(PROGRESS_EVERY_MS - 2);
    }
    const frame = await live.next((f) => f.type === 'events' && (f.jobs ?? []).some((j: JobView) => j.id === created.body.id && j.status === 'aborted'));
    // One tick may carry several views of the job; the last is the newest.
    expect(frame.jobs.filter((j: JobView) => j.id === created.body.id).at(-1)).toMatchObject({ status: 'aborted', counts: { failed: 3 } });
    off();
    await live.close();
    await Promise.all(failing.map((d) => d.device.close()));
  });

  it('answers unknown jobs 404, bad bodies 400 with the reason, and unknown devices 404', async () => {
    await register(hub, ['bad-1']);
    const post = (body: unknown) => hub.api('POST', '/v1/jobs', body);
    const notFound = await hub.api('GET', '/v1/jobs/jnope');
    expect(notFound.status).toBe(404);
    expect(notFound.body.error.code).toBe('PW_ERR_JOB_NOT_FOUND');
    expect((await hub.api('POST', '/v1/jobs/jnope/cancel')).status).toBe(404);
    expect((await hub.api('GET', '/v1/jobs/jnope/commands')).status).toBe(404);
    const malformed = await fetch(`${hub.baseUrl}/v1/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' }, body: '{"command": ',
    });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toMatch(/JSON/i);
    const noTarget = await post({ command: { name: 'x' } });
    expect(noTarget.status).toBe(400);
    expect(noTarget.body.error.message).toMatch(/target/);
    const both = await post({ command: { name: 'x' }, target: { ids: ['bad-1'], prefix: 'bad-' } });
    expect(both.status).toBe(400);
    expect(both.body.error.message).toMatch(/exactly one of ids or prefix/);
    const empty = await post({ command: { name: 'x' }, target: {} });
    expect(empty.status).toBe(400);
    const nothing = await post({ command: { name: 'x' }, target: { prefix: 'no-such-' } });
    expect(nothing.status).toBe(400);
    expect(nothing.body.error.code).toBe('PW_ERR_JOB_NO_TARGETS');
    const unknown = await post({ command: { name: 'x' }, target: { ids: ['bad-1', 'ghost-1'] } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(/ghost-1/);
    const zeroRate = await post({ command: { name: 'x' }, target: { ids: ['bad-1'] }, rolloutPerSecond: 0 });
    expect(zeroRate.status).toBe(400);
    expect(zeroRate.body.error.message).toMatch(/rolloutPerSecond/);
    const pct = await post({ command: { name: 'x' }, target: { ids: ['bad-1'] }, abortThresholdPct: 101 });
    expect(pct.status).toBe(400);
    const big = await post({ command: { name: 'x', args: 'y'.repeat(70_000) }, target: { ids: ['bad-1'] } });
    expect(big.status).toBe(400);
    expect(big.body.error.code).toBe('PW_ERR_COMMAND_TOO_BIG');
    const longTtl = await post({ command: { name: 'x', ttlMs: 7_200_000 }, target: { ids: ['bad-1'] } });
    expect(longTtl.status).toBe(409);
    expect(longTtl.body.error.code).toBe('PW_ERR_COMMAND_TTL_TOO_LONG');
    expect((await hub.api('GET', '/v1/jobs?status=running')).status).toBe(400);
    const openapi = await hub.api('GET', '/openapi.json');
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/commands', '/v1/jobs/{id}/cancel']));
  });
});

describe('fleet jobs across a hub restart', () => {
  let hubs: Awaited<ReturnType<typeof restartableHub>> | undefined;
  afterAll(async () => { await hubs?.close(); });

  it('resumes the rollout where it stopped, without a second command for any device, and keeps the counts', async () => {
    hubs = await restartableHub('jobs');
    const { dataDir } = hubs;
    const first = await hubs.start();
    // 10 targets at 2/s: the hub is closed about 4 s before the rollout could have reached the last.
    const ids = Array.from({ length: 10 }, (_, i) => `resume-${i}`);
    const last = ids.at(-1)!;
    const secrets = await register(first, ids);
    const created = await first.api('POST', '/v1/jobs', { command: { name: 'rotate-keys' }, target: { prefix: 'resume-' }, rolloutPerSecond: 2 });
    await jobWhen(first.api, created.body.id, (j) => j.dispatched >= 2);
    await first.close();
    // What a crash between the dispatching mark and the end of the command's creation leaves behind:
    // resume-0 has its command but only the mark; the last target has the mark and no command.
    const stores = await openLmdbStores(dataDir);
    const jobStore = new JobStore(stores);
    const served = (await jobStore.dispatches(created.body.id)).map((entry) => entry.deviceId);
    expect(served).toContain('resume-0');
    expect(served).not.toContain(last);
    await jobStore.putDispatch(created.body.id, { deviceId: 'resume-0', dispatching: true });
    await jobStore.putDispatch(created.body.id, { deviceId: last, dispatching: true });
    await stores.close();

    const second = await hubs.start();
    const resumed = (await second.api('GET', `/v1/jobs/${created.body.id}`)).body as JobView;
    expect(resumed.status).toBe('in-progress');
    // Counted again from the store (the resumed rollout may already have added one).
    expect(resumed.dispatched).toBeGreaterThanOrEqual(served.length);
    await jobWhen(second.api, created.body.id, (j) => j.dispatched === ids.length);
    for (const id of ids) {
      const r = await second.api('GET', `/v1/devices/${id}/commands`);
      expect(r.body.commands.filter((c: { jobId?: string }) => c.jobId === created.body.id)).toHaveLength(1);
    }
    const devices = await Promise.all(ids.map((id) => answering(second, id, secrets.get(id)!, 1)));
    const done = await jobWhen(second.api, created.body.id, (j) => j.status === 'completed');
    expect(done).toMatchObject({ total: ids.length, dispatched: ids.length, counts: { succeeded: ids.length } });
    expect(devices.map((d) => d.commands.length)).toEqual(ids.map(() => 1));
    await Promise.all(devices.map((d) => d.device.close()));
  });

});
