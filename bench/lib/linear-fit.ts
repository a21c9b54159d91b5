/**
 * Least-squares line through (x, y) points, with the standard error of its
 * slope: a memory slope means little without how well the samples pin it
 * down (a GC sawtooth over a short window can tilt a fit either way).
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
