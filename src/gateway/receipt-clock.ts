/**
 * The hub's clock for resolving relative SenML times, in microseconds.
 *
 * Date.now() has millisecond resolution: two messages of one device in the
 * same millisecond, both saying "now", would resolve to the same timestamp,
 * and InfluxDB keeps only the last point of a series per timestamp — a
 * silent loss. This clock has microsecond resolution and never returns the
 * same value twice, so every message gets its own receipt time.
 */
import { performance } from 'node:perf_hooks';

export function receiptClock(): () => number {
  let last = 0;
  return () => {
    const now = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    last = now > last ? now : last + 1;
    return last;
  };
}
