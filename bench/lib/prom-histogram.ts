/**
 * A Prometheus histogram read from /metrics text, and what the bench asks of
 * it: the change over a window, and quantiles of that change as the bucket
 * bound they fall under (an upper bound: "99% of commits took at most 20 ms").
 */

/** Cumulative counts per upper bound (seconds), ascending; +Inf last. */
export type HistogramCounts = { le: number; count: number }[];

export function readHistogram(text: string, name: string): HistogramCounts {
  const out: HistogramCounts = [];
  const pattern = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(pattern)) out.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  return out.sort((a, b) => a.le - b.le);
}

export function histogramDelta(before: HistogramCounts, after: HistogramCounts): HistogramCounts {
  return after.map(({ le, count }) => ({ le, count: count - (before.find((b) => b.le === le)?.count ?? 0) }));
}

/** The smallest bound under which at least share q of the observations fall; undefined when there are none. */
export function quantileBound(counts: HistogramCounts, q: number): number | undefined {
  const total = counts.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  return counts.find(({ count }) => count >= q * total)?.le;
}

/** Observations over a bound (seconds), e.g. commits slower than 50 ms. */
export function countAbove(counts: HistogramCounts, bound: number): number {
  const total = counts.at(-1)?.count ?? 0;
  const under = counts.filter((c) => c.le <= bound).at(-1)?.count ?? 0;
  return total - under;
}
