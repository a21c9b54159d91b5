/** Percentiles of a set of latencies, the one shape every scenario reports them in. */

/** Latencies in ms: count, mean, percentiles, max (NaN when there are none). */
export type LatencyFigures = { count: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number };

export function latencyFigures(values: number[]): LatencyFigures {
  const s = Float64Array.from(values).sort();
  const q = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  const sum = values.reduce((a, b) => a + b, 0);
  return { count: s.length, mean: s.length ? sum / s.length : NaN, p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: s.length ? s[s.length - 1]! : NaN };
}
