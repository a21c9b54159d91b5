/**
 * The state machine of one alert (src/alerts/alert-track.ts), pure: readings
 * and sweeps at chosen clock values, and what each step did.
 */
import { describe, expect, it } from 'vitest';
import { AlertTrack, stepReading, stepSweep } from '../../src/alerts/alert-track.js';
import type { AlertCondition } from '../../src/alerts/types.js';

const above: AlertCondition = { kind: 'above', threshold: 80, clearAt: 70 };
const below: AlertCondition = { kind: 'below', threshold: 10 };
const stale: AlertCondition = { kind: 'stale', afterSeconds: 30 };

describe('alert track: thresholds', () => {
  it('fires at the first crossing reading when the duration is 0, and only once while it stays crossed', () => {
    const track = new AlertTrack(0);
    expect(stepReading(track, above, 0, 79, 1000)).toBe('none');
    expect(stepReading(track, above, 0, 81, 2000)).toBe('fire');
    expect(track).toMatchObject({ phase: 'firing', firingSince: 2000, lastValue: 81 });
    expect(stepReading(track, above, 0, 95, 3000)).toBe('none');
    expect(track.firingSince).toBe(2000);
  });

  it('the threshold itself is not beyond it: 80 does not fire `above 80`', () => {
    const track = new AlertTrack(0);
    expect(stepReading(track, above, 0, 80, 1000)).toBe('none');
    expect(track.phase).toBe('ok');
  });

  it('waits for the duration: pending from the first crossing, fires at the first reading after forSeconds', () => {
    const track = new AlertTrack(0);
    expect(stepReading(track, above, 60_000, 85, 10_000)).toBe('none');
    expect(track).toMatchObject({ phase: 'pending', pendingSince: 10_000 });
    expect(stepReading(track, above, 60_000, 90, 69_999)).toBe('none');
    expect(stepReading(track, above, 60_000, 90, 70_000)).toBe('fire');
    expect(track.firingSince).toBe(70_000);
  });

  it('a reading back inside during the duration starts it over', () => {
    const track = new AlertTrack(0);
    stepReading(track, above, 60_000, 85, 0);
    expect(stepReading(track, above, 60_000, 50, 30_000)).toBe('none');
    expect(track.phase).toBe('ok');
    expect(stepReading(track, above, 60_000, 85, 40_000)).toBe('none');
    expect(stepReading(track, above, 60_000, 85, 90_000)).toBe('none');
    expect(stepReading(track, above, 60_000, 85, 100_000)).toBe('fire');
  });

  it('the sweep fires a pending alert whose duration ran out without another reading', () => {
    const track = new AlertTrack(0);
    stepReading(track, above, 60_000, 85, 0);
    expect(stepSweep(track, above, 60_000, 59_000)).toBe('none');
    expect(stepSweep(track, above, 60_000, 60_000)).toBe('fire');
    expect(track).toMatchObject({ phase: 'firing', lastValue: 85 });
    expect(stepSweep(track, above, 60_000, 61_000)).toBe('none');
  });

  it('hysteresis: a firing `above` alert stays firing between clearAt and the threshold, and resolves at clearAt', () => {
    const track = new AlertTrack(0);
    stepReading(track, above, 0, 85, 0);
    expect(stepReading(track, above, 0, 79, 1000)).toBe('none');
    expect(stepReading(track, above, 0, 70.5, 2000)).toBe('none');
    expect(track.phase).toBe('firing');
    expect(stepReading(track, above, 0, 70, 3000)).toBe('resolve');
    expect(track.phase).toBe('ok');
    // And it can fire again.
    expect(stepReading(track, above, 0, 81, 4000)).toBe('fire');
  });

  it('without clearAt the threshold clears it; `below` mirrors `above`', () => {
    const track = new AlertTrack(0);
    expect(stepReading(track, below, 0, 9.9, 0)).toBe('fire');
    expect(stepReading(track, below, 0, 9.99, 1000)).toBe('none');
    expect(stepReading(track, below, 0, 10, 2000)).toBe('resolve');
    const withClear: AlertCondition = { kind: 'below', threshold: 10, clearAt: 15 };
    const other = new AlertTrack(0);
    stepReading(other, withClear, 0, 5, 0);
    expect(stepReading(other, withClear, 0, 14, 1000)).toBe('none');
    expect(stepReading(other, withClear, 0, 15, 2000)).toBe('resolve');
  });
});

describe('alert track: staleness', () => {
  it('fires from the sweep once no reading came for afterSeconds, measured from the last reading', () => {
    const track = new AlertTrack(0);
    stepReading(track, stale, 0, 1, 10_000);
    expect(stepSweep(track, stale, 0, 39_999)).toBe('none');
    expect(stepSweep(track, stale, 0, 40_000)).toBe('fire');
    expect(track).toMatchObject({ phase: 'firing', firingSince: 40_000 });
    expect(stepSweep(track, stale, 0, 80_000)).toBe('none');
  });

  it('a track never read (a device named by id) is stale from its creation; the next reading resolves it', () => {
    const track = new AlertTrack(5000);
    expect(stepSweep(track, stale, 0, 35_000)).toBe('fire');
    expect(stepReading(track, stale, 0, 42, 36_000)).toBe('resolve');
    expect(track).toMatchObject({ phase: 'ok', lastSeen: 36_000 });
    expect(stepReading(track, stale, 0, 42, 37_000)).toBe('none');
  });

  it('readings keep a stale rule quiet however many sweeps pass', () => {
    const track = new AlertTrack(0);
    for (let t = 0; t < 300_000; t += 10_000) {
      stepReading(track, stale, 0, 1, t);
      expect(stepSweep(track, stale, 0, t + 5000)).toBe('none');
    }
  });
});
