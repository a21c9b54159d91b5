/**
 * Deadlines beyond what one setTimeout can wait (src/commands/deadline.ts):
 * Node fires a delay above 2^31-1 ms (about 24.8 days) after 1 ms, and
 * PULSEWIRE_COMMAND_TTL_MS allows 30 days. vitest's fake timers copy that
 * behaviour of Node, so the command test below fails on a plain setTimeout.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isFinal } from '../../src/commands/command-service.js';
import { atDeadline, MAX_TIMER_MS, type Scheduler } from '../../src/commands/deadline.js';
import type { CommandView } from '../../src/commands/types.js';
import { startServices } from '../support/services.js';
import { LMDB } from '../support/stores.js';

const DAY_MS = 86_400_000;

/** A scheduler that only records what it was asked; `run` fires the pending timer after moving the clock by its delay. */
function recordingScheduler() {
  let now = 0;
  const delays: number[] = [];
  let pending: (() => void) | undefined;
  const scheduler: Scheduler = {
    setTimeout(fn, ms) {
      delays.push(ms);
      pending = fn;
      return {} as NodeJS.Timeout;
    },
    clearTimeout() {
      pending = undefined;
    },
  };
  return {
    scheduler,
    delays,
    now: () => now,
    /** Fires the pending timer `late` ms after its delay (a busy or suspended process). */
    run(late = 0) {
      const fn = pending!;
      pending = undefined;
      now += delays.at(-1)! + late;
      fn();
    },
    get pending() {
      return pending !== undefined;
    },
  };
}

describe('atDeadline', () => {
  it('never asks setTimeout for more than 2^31-1 ms and fires once, at the deadline', () => {
    const clock = recordingScheduler();
    const fire = vi.fn();
    atDeadline(30 * DAY_MS, fire, clock.now, clock.scheduler);
    expect(clock.delays).toEqual([MAX_TIMER_MS]);
    clock.run();
    expect(fire).not.toHaveBeenCalled();
    expect(clock.delays).toEqual([MAX_TIMER_MS, 30 * DAY_MS - MAX_TIMER_MS]);
    clock.run();
    expect(fire).toHaveBeenCalledTimes(1);
    expect(clock.now()).toBe(30 * DAY_MS);
    expect(clock.pending).toBe(false);
  });

  it('waits for what is left by the clock, so a late wake-up does not push the deadline out', () => {
    const clock = recordingScheduler();
    const fire = vi.fn();
    atDeadline(2 * MAX_TIMER_MS + 10, fire, clock.now, clock.scheduler);
    clock.run(1000);
    expect(clock.delays).toEqual([MAX_TIMER_MS, MAX_TIMER_MS - 990]);
    clock.run();
    expect(fire).toHaveBeenCalledTimes(1);
    expect(clock.now()).toBe(2 * MAX_TIMER_MS + 10);
  });

  it('fires at once (next turn) for a deadline already passed, and never after cancel', () => {
    const clock = recordingScheduler();
    const fire = vi.fn();
    atDeadline(-5, fire, clock.now, clock.scheduler);
    expect(clock.delays).toEqual([0]);
    clock.run();
    expect(fire).toHaveBeenCalledTimes(1);

    const cancelled = vi.fn();
    atDeadline(MAX_TIMER_MS + 1, cancelled, clock.now, clock.scheduler).cancel();
    expect(clock.pending).toBe(false);
    expect(cancelled).not.toHaveBeenCalled();
  });
});

describe('a command with a TTL above 24.8 days (real lmdb, fake clock)', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('stays queued for an offline device until its TTL, then expires', async () => {
    const handle = await LMDB.open();
    cleanup.push(() => handle.close());
    // A fixed start (a Saturday noon, UTC), not the wall clock: the 30 days run over a month's end.
    vi.useFakeTimers({ now: Date.UTC(2025, 10, 22, 12), toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const hub = await startServices(handle.stores, { limits: { commandTtlMs: 30 * DAY_MS, commandRetentionMs: 7 * DAY_MS } });
    cleanup.push(() => hub.stop());
    const { commands } = hub;
    const ended = new Promise<CommandView>((resolve) => hub.bus.on('command.status', ({ command }) => { if (isFinal(command.status)) resolve(command); }));

    const created = await commands.create('sleepy-1', { name: 'update_firmware', ttlMs: 30 * DAY_MS });
    await vi.advanceTimersByTimeAsync(1000);
    expect((await commands.get('sleepy-1', created.id))!.status).toBe('queued');
    await vi.advanceTimersByTimeAsync(29 * DAY_MS);
    expect((await commands.get('sleepy-1', created.id))!.status).toBe('queued');
    await vi.advanceTimersByTimeAsync(DAY_MS - 1000);
    const final = await ended;
    expect(final).toMatchObject({ id: created.id, status: 'expired', result: `not sent within ttlMs ${30 * DAY_MS}` });
    expect(final.createdAt).toBe('2025-11-22T12:00:00.000Z');
    expect(final.completedAt).toBe('2025-12-22T12:00:00.000Z');
  });
});
