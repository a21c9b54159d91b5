/**
 * The state machine of one alert: one rule on one device's series. Pure: the
 * caller passes the clock (epoch ms) and the reading, and gets back whether
 * the alert fired or resolved; storing, emitting and writing points are the
 * engine's (alert-engine.ts). A track is mutated in place, because the
 * engine steps it once per matching reading on the ingest path and must not
 * allocate there.
 *
 *   ok ──crosses──▶ pending ──held forSeconds──▶ firing ──clears (hysteresis)──▶ ok
 *    ▲                 │
 *    └──back inside────┘
 *
 * `stale` has no pending phase: it fires from the sweep when no reading came
 * for afterSeconds, and resolves at the next reading.
 */
import type { AlertCondition } from './types.js';

export type Phase = 'ok' | 'pending' | 'firing';

/** What a step did: nothing, the alert fired, or it resolved. */
export type Step = 'none' | 'fire' | 'resolve';

export class AlertTrack {
  phase: Phase = 'ok';
  /** When the condition started to hold (phase pending). */
  pendingSince = 0;
  /** When it fired (phase firing). */
  firingSince = 0;
  /** The last reading's arrival (staleness is measured from it). */
  lastSeen: number;
  /** The last reading's value (what a fire from the sweep reports). */
  lastValue: number | undefined = undefined;
  /** The alerts bucket's revision of this alert while firing: resolving deletes exactly that record. */
  revision = 0;

  constructor(lastSeen: number) {
    this.lastSeen = lastSeen;
  }
}

/** A reading arrived for this track. */
export function stepReading(track: AlertTrack, condition: AlertCondition, forMs: number, value: number, now: number): Step {
  track.lastSeen = now;
  track.lastValue = value;
  if (condition.kind === 'stale') {
    if (track.phase !== 'firing') return 'none';
    track.phase = 'ok';
    return 'resolve';
  }
  const above = condition.kind === 'above';
  if (track.phase === 'firing') {
    // Hysteresis: a firing alert stays firing until the value is back past clearAt, not merely past the threshold.
    const clearAt = condition.clearAt ?? condition.threshold;
    if (above ? value > clearAt : value < clearAt) return 'none';
    track.phase = 'ok';
    return 'resolve';
  }
  const crossed = above ? value > condition.threshold : value < condition.threshold;
  if (!crossed) {
    track.phase = 'ok';
    return 'none';
  }
  if (track.phase === 'ok') {
    track.phase = 'pending';
    track.pendingSince = now;
  }
  return promoteIfHeld(track, forMs, now);
}

/**
 * The sweep's visit: a stale track fires when no reading came for
 * afterSeconds; a pending one fires once it has held for its duration even
 * if no further reading came to show it (the last one still stands).
 */
export function stepSweep(track: AlertTrack, condition: AlertCondition, forMs: number, now: number): Step {
  if (condition.kind === 'stale') {
    if (track.phase === 'firing' || now - track.lastSeen < condition.afterSeconds * 1000) return 'none';
    track.phase = 'firing';
    track.firingSince = now;
    return 'fire';
  }
  return track.phase === 'pending' ? promoteIfHeld(track, forMs, now) : 'none';
}

function promoteIfHeld(track: AlertTrack, forMs: number, now: number): Step {
  if (now - track.pendingSince < forMs) return 'none';
  track.phase = 'firing';
  track.firingSince = now;
  return 'fire';
}
