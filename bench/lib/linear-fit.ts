/**
 * Least-squares line through (x, y) points, with the standard error of its
 * slope: a memory slope means little without how well the samples pin it
 * down (a GC sawtooth over a short window can tilt a fit either way). And
 * the Theil–Sen slope (the median of the slopes between every two points),
 * which a few outliers do not move: a leak raises every point, a passing
 * backlog only some.
 */
export type LinearFit = { slope: number; intercept: number; slopeStdError: number; points: number };

export function linearFit(points: Array<{ x: number; y: number }>): LinearFit {
  const n = points.length;
  if (n < 2) return { slope: NaN, intercept: NaN, slopeStdError: NaN, points: n };
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  if (sxx === 0) return { slope: NaN, intercept: NaN, slopeStdError: NaN, points: n };
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const residuals = points.reduce((s, p) => s + (p.y - (intercept + slope * p.x)) ** 2, 0);
  // With two points the line passes through both: no residual to estimate the error from.
  const slopeStdError = n > 2 ? Math.sqrt(residuals / (n - 2) / sxx) : NaN;
  return { slope, intercept, slopeStdError, points: n };
}

/** The median of the slopes between every two points with different x (Theil–Sen); NaN with fewer than two. */
export function theilSenSlope(points: Array<{ x: number; y: number }>): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const dx = points[j]!.x - points[i]!.x;
      if (dx !== 0) slopes.push((points[j]!.y - points[i]!.y) / dx);
    }
  }
  if (slopes.length === 0) return NaN;
  slopes.sort((a, b) => a - b);
  const mid = Math.floor(slopes.length / 2);
  return slopes.length % 2 === 1 ? slopes[mid]! : (slopes[mid - 1]! + slopes[mid]!) / 2;
}
