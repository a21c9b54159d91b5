/**
 * The services' contract on every backend: what commands, device state, jobs,
 * logged-out sessions and leases promise must hold the same with one process
 * on lmdb and with nodes sharing JetStream. Where two writers race, two
 * service instances on the same stores play two nodes: exactly one wins.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BucketRevokedSessions } from '../../src/api/revoked-sessions.js';
import { Leases } from '../../src/cluster/leases.js';
import { isFinal } from '../../src/commands/command-service.js';
import { StateStore } from '../../src/state/state-store.js';
import { startServices, quiet, type ServiceHarness } from '../support/services.js';
import { BACKENDS, type StoresHandle } from '../support/stores.js';
import { until } from '../support/wait.js';

describe.each(BACKENDS)('services on $name', (backend) => {
  let handle: StoresHandle;
  const started: ServiceHarness[] = [];
  /** `bridged`: on JetStream, this node's bus is relayed over NATS as a cluster node's is (else each node hears only itself). */
  const start = async (nodeId: string, options: { bridged?: boolean } = {}) => {
    const hub = await startServices(handle.stores, { nodeId, ...(options.bridged && handle.nats ? { bridge: handle.nats } : {}) });
    started.push(hub);
    return hub;
  };

  beforeEach(async () => { handle = await backend.open(); });
  afterEach(async () => {
    for (const hub of started.splice(0).reverse()) await hub.stop();
    await handle.close();
  });

  describe('commands', () => {
    it('a command goes queued, sent (with a sending mark first), received, succeeded, each change once on the bus', async () => {
      const hub = await start('node-a');
      const seen: string[] = [];
      hub.bus.on('command.status', ({ command, previous }) => seen.push(`${previous ?? 'new'}>${command.status}`));
      const created = await hub.commands.create('d1', { name: 'reboot', args: { delay: 5 } });
      const taken = await hub.commands.takeQueued('d1');
      expect(taken.map((c) => [c.id, c.sendingBy])).toEqual([[created.id, 'node-a']]);
      expect(await hub.commands.takeQueued('d1')).toEqual([]); // marked: nobody takes it twice
      hub.commands.delivered(taken, [true]);
      await until(async () => ((await hub.commands.get('d1', created.id))?.status === 'sent' ? true : undefined));
      hub.commands.onResult('d1', { type: 4, commandId: created.id, status: 0 });
      hub.commands.onResult('d1', { type: 4, commandId: created.id, status: 1, payload: 'ok' });
      const final = await hub.commands.waitFinal('d1', created.id, 10_000);
      expect(final).toMatchObject({ status: 'succeeded', result: 'ok', args: { delay: 5 } });
      await until(() => (seen.length === 4 ? true : undefined));
      expect(seen).toEqual(['new>queued', 'queued>sent', 'sent>received', 'received>succeeded']);
      expect((await hub.commands.list('d1', undefined, 10)).map((c) => c.status)).toEqual(['succeeded']);
    });

    it('of a cancel and a sending mark racing for one command, exactly one wins', async () => {
      const a = await start('node-a');
      const b = await start('node-b');
      for (let round = 0; round < 5; round++) {
        const created = await a.commands.create('race-1', { name: `r${round}` });
        const [taken, cancelled] = await Promise.all([
          a.commands.takeQueued('race-1'),
          b.commands.cancel('race-1', created.id).then(() => true, (err: { code?: string }) => {
            expect(err.code).toBe('PW_ERR_COMMAND_NOT_QUEUED');
            return false;
          }),
        ]);
        const sending = taken.some((c) => c.id === created.id);
        expect(sending !== cancelled).toBe(true);
        if (sending) a.commands.delivered(taken, taken.map(() => true));
        const status = async () => (await b.commands.get('race-1', created.id))!.status;
        await until(async () => ((await status()) === (sending ? 'sent' : 'cancelled') ? true : undefined));
      }
    });

    it('of two final RESULTs arriving at two nodes, exactly one is stored and the other ignored', async () => {
      const a = await start('node-a');
      const b = await start('node-b');
      const created = await a.commands.create('d2', { name: 'flash' });
      a.commands.delivered(await a.commands.takeQueued('d2'), [true]);
      await until(async () => ((await a.commands.get('d2', created.id))?.status === 'sent' ? true : undefined));
      const finals: string[] = [];
      a.bus.on('command.status', ({ command }) => { if (isFinal(command.status)) finals.push(`a:${command.status}`); });
      b.bus.on('command.status', ({ command }) => { if (isFinal(command.status)) finals.push(`b:${command.status}`); });
      a.commands.onResult('d2', { type: 4, commandId: created.id, status: 1 });
      b.commands.onResult('d2', { type: 4, commandId: created.id, status: 2 });
      await until(() => (finals.length >= 1 ? true : undefined));
      const stored = (await a.commands.get('d2', created.id))!;
      expect(['succeeded', 'failed']).toContain(stored.status);
      await until(async () => ((await b.commands.get('d2', created.id))?.status === stored.status ? true : undefined));
      // Each node's bus hears only what that node decided: one final in all.
      expect(finals).toHaveLength(1);
      expect(finals[0]!.endsWith(stored.status)).toBe(true);
    });

    it('keeps a finished command out of the queue: moved to the finished ones, still readable and listed', async () => {
      const hub = await start('node-a');
      const done = await hub.commands.create('q1', { name: 'one' });
      await hub.commands.cancel('q1', done.id);
      const waiting = await hub.commands.create('q1', { name: 'two' });
      await until(async () => ((await handle.stores.commandsDone.get(['q1', done.id])) ? true : undefined));
      expect(await handle.stores.commands.get(['q1', done.id])).toBeUndefined();
      expect((await hub.commands.store.queueOf('q1')).map((c) => c.id)).toEqual([waiting.id]);
      expect((await hub.commands.list('q1', undefined, 10)).map((c) => [c.id, c.status])).toEqual([[done.id, 'cancelled'], [waiting.id, 'queued']]);
      expect((await hub.commands.get('q1', done.id))?.status).toBe('cancelled');
    });

    it('a command marked as sending by a node that is gone counts as sent and times out', async () => {
      const gone = await start('node-gone');
      const created = await gone.commands.create('d3', { name: 'reboot', timeoutMs: 200 });
      await gone.commands.takeQueued('d3'); // marked, and the frame "written": then the node dies
      await gone.stop();
      started.splice(started.indexOf(gone), 1);
      const survivor = await start('node-b');
      const final = await survivor.commands.waitFinal('d3', created.id, 15_000);
      expect(final).toMatchObject({ status: 'timed-out' });
      expect(final!.sentAt).toBeDefined();
    });
  });

  describe('device state', () => {
    it('gives two concurrent desired patches two versions and merges both; reported merges per device in order', async () => {
      const a = await start('node-a');
      const b = await start('node-b');
      const [x, y] = await Promise.all([a.deviceState.patchDesired('s1', { x: 1 }), b.deviceState.patchDesired('s1', { y: 2 })]);
      expect(new Set([x.version, y.version])).toEqual(new Set([1, 2]));
      expect((await a.deviceState.view('s1')).desired).toEqual({ x: 1, y: 2 });
      await a.deviceState.onReported('s1', new Map<string, unknown>([['fw', '1.0'], ['x', 1]]) as never);
      await a.deviceState.onReported('s1', new Map<string, unknown>([['fw', '1.1'], ['x', null]]) as never);
      expect(await b.deviceState.view('s1')).toMatchObject({ reported: { fw: '1.1' }, delta: { x: 1, y: 2 }, version: 2 });
    });

    it('keeps the last desired version of a removed device, so a new one continues above it', async () => {
      const hub = await start('node-a');
      await hub.deviceState.patchDesired('s2', { a: 1 });
      await hub.deviceState.patchDesired('s2', { a: 2 });
      await hub.deviceState.forgetDevice('s2');
      expect(await hub.deviceState.view('s2')).toMatchObject({ desired: {}, version: 0 });
      expect((await hub.deviceState.patchDesired('s2', { b: 1 })).version).toBe(3);
      expect(await new StateStore(handle.stores).desired('s2')).toMatchObject({ desired: { b: 1 }, version: 3 });
    });
  });

  describe('jobs', () => {
    it('a job created on one node is rolled out by the node holding the jobs lease, and cancelled from another', async () => {
      // Bridged as in a cluster: the runner counts the commands the other node cancels from that node's events.
      // Without it the runner saw only the cancels it won itself, and waited for the rest forever (a CI flake).
      const runner = await start('node-a', { bridged: true });
      // One lmdb process is the only node (it holds every lease); two there would both roll the job out.
      const other = handle.stores.leases ? await start('node-b', { bridged: true }) : runner;
      for (const id of ['j-1', 'j-2', 'j-3', 'j-4']) await runner.registry.register(id);
      // With one process every node "holds" every lease; in a cluster only one of the two runs it.
      const created = await other.jobs.create({ command: { name: 'upgrade' }, target: { prefix: 'j-' }, rolloutPerSecond: 2 });
      await until(async () => ((await other.jobs.get(created.id)).dispatched >= 1 ? true : undefined), 15_000);
      const cancelled = await other.jobs.cancel(created.id);
      expect(cancelled.status).toBe('cancelled');
      await until(async () => {
        const job = await runner.jobs.get(created.id);
        return job.status === 'cancelled' && (job.counts.cancelled ?? 0) === job.dispatched ? job : undefined;
      }, 15_000);
      const view = await other.jobs.get(created.id);
      expect(view.dispatched).toBeLessThan(4);
      const commands = await other.jobs.commandsOf(created.id, undefined, 10);
      expect(commands.map((c) => c.status).every((s) => s === 'cancelled')).toBe(true);
    });
  });

  it('a logged-out session is refused by every node', async () => {
    const a = new BucketRevokedSessions(handle.stores.revokedSessions);
    const b = new BucketRevokedSessions(handle.stores.revokedSessions);
    await a.add('nonce-1', Date.now() + 60_000);
    expect(await b.has('nonce-1')).toBe(true);
    expect(await b.has('nonce-2')).toBe(false);
    await b.prune(Date.now() + 120_000, 10);
    expect(await a.has('nonce-1')).toBe(false);
  });

  it('a lease is held by one node at a time, and taken over when its holder stops renewing', async () => {
    const events: string[] = [];
    const task = (node: string) => ({ acquired: () => { events.push(`${node}+`); }, lost: () => { events.push(`${node}-`); } });
    const a = new Leases({ bucket: handle.stores.leases, nodeId: 'node-a', leaseMs: 5_000, logger: quiet });
    const b = new Leases({ bucket: handle.stores.leases, nodeId: 'node-b', leaseMs: 5_000, logger: quiet });
    await a.hold('work', task('a'));
    await b.hold('work', task('b'));
    if (!handle.stores.leases) {
      // One process: every lease is granted at once (there is nobody to share with).
      expect(events).toEqual(['a+', 'b+']);
    } else {
      expect(events).toEqual(['a+']);
      expect([a.holds('work'), b.holds('work')]).toEqual([true, false]);
      // The holder leaves gracefully: the other takes over within a lease time.
      await a.close();
      await until(() => (b.holds('work') ? true : undefined), 10_000);
      expect(events).toEqual(['a+', 'a-', 'b+']);
    }
    await a.close();
    await b.close();
  });
});
