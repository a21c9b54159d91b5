import { describe, expect, it, vi } from 'vitest';
import { JobProgress } from '../../src/jobs/progress.js';
import { Rollout } from '../../src/jobs/rollout.js';
import { waitFor } from '../support/wait.js';

describe('job progress', () => {
  it('moves commands between status counts and knows when all are final', () => {
    const p = new JobProgress();
    p.apply(undefined, 'queued');
    p.apply(undefined, 'queued');
    p.apply('queued', 'sent');
    expect(p.counts).toEqual({ queued: 1, sent: 1 });
    expect(p.settled).toBe(false);
    p.apply('sent', 'succeeded');
    p.apply('queued', 'cancelled');
    expect(p.counts).toEqual({ succeeded: 1, cancelled: 1 });
    expect(p.dispatched).toBe(2);
    expect(p.settled).toBe(true);
  });

  it('counts failed, rejected, timed-out and expired as failures, cancelled as neither', () => {
    const p = new JobProgress();
    for (const status of ['failed', 'rejected', 'timed-out', 'expired', 'succeeded', 'cancelled'] as const) p.apply(undefined, status);
    expect(p.failures).toBe(4);
    expect(p.finished).toBe(5);
  });

  it('aborts only above the threshold and only once enough commands finished', () => {
    const p = new JobProgress();
    const rule = { abortThresholdPct: 50, abortMinFinished: 4 };
    p.apply(undefined, 'failed');
    p.apply(undefined, 'failed');
    p.apply(undefined, 'failed');
    expect(p.abortReason(rule)).toBeUndefined(); // 3 finished < 4
    p.apply(undefined, 'succeeded');
    expect(p.abortReason(rule)).toMatch(/3 of 4 finished commands failed \(75%\), more than abortThresholdPct 50/);
    p.apply(undefined, 'succeeded');
    p.apply(undefined, 'succeeded');
    expect(p.abortReason(rule)).toBeUndefined(); // exactly 50% is not more than 50%
    expect(p.abortReason({ abortThresholdPct: 100, abortMinFinished: 1 })).toBeUndefined();
  });
});

describe('rollout pacing', () => {
  it('hands out each target not yet served, once, in order, and skips do not use a slot', async () => {
    const handed: string[] = [];
    const rollout = new Rollout({
      targets: ['a', 'b', 'c', 'd', 'e'],
      served: new Set(['b']),
      perSecond: 1000,
      step: async (id) => { handed.push(id); return id === 'c' ? 'skipped' : 'dispatched'; },
    });
    expect(await rollout.run()).toBe(true);
    expect(handed).toEqual(['a', 'c', 'd', 'e']);
  });

  it('waits for the slot of each dispatch on the clock it is given, slots counted from the start', async () => {
    // Timers and clock both fake and pinned: the times are exact, however busy the machine.
    // (A real-time ticker moving a fake clock fell behind the real sleeps on a loaded machine.)
    vi.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const times: number[] = [];
      const rollout = new Rollout({
        targets: ['a', 'b', 'c'],
        served: new Set(),
        perSecond: 100, // 10 ms apart
        now: () => Date.now(),
        // The first step takes 7 ms: the next slot is still 10 ms after the start, not after the step.
        step: async (id) => {
          times.push(Date.now());
          if (id === 'a') await new Promise((resolve) => setTimeout(resolve, 7));
          return 'dispatched';
        },
      });
      const done = rollout.run();
      await vi.advanceTimersByTimeAsync(100);
      expect(await done).toBe(true);
      expect(times).toEqual([0, 10, 20]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('stops before the next dispatch when stopped', async () => {
    const handed: string[] = [];
    // A slot every 1000 s: 'b' is never due while the test runs, however slow the machine.
    const rollout = new Rollout({ targets: ['a', 'b', 'c'], served: new Set(), perSecond: 0.001, step: async (id) => { handed.push(id); return 'dispatched'; } });
    const done = rollout.run();
    await waitFor(() => handed.length === 1, { what: 'the first dispatch' });
    rollout.stop();
    expect(await done).toBe(false);
    expect(handed).toEqual(['a']);
  });
});
