/**
 * What an operator key may do. Scopes are ordered, each allowing everything
 * the one below does:
 * - `read`: devices, history, series, state, commands, jobs, alert rules and
 *   firing alerts as they are, the live stream, metrics;
 * - `operate`: read, plus sending and cancelling commands, desired state, jobs,
 *   alert rules;
 * - `admin`: operate, plus the registry (register, rotate, disable, remove
 *   devices), operator keys, dead letters and the audit log.
 * Each operator route states the scope it needs in its schema as `x-scope`,
 * which the OpenAPI document carries as an extension field, so the route and
 * its documentation cannot disagree.
 */
export const SCOPES = ['read', 'operate', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The schema field a route states its scope in (and the OpenAPI operation shows). */
export const SCOPE_FIELD = 'x-scope';

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

/** Whether a key of scope `have` may use a route that needs `need`. */
export function scopeAllows(have: Scope, need: Scope): boolean {
  return SCOPES.indexOf(have) >= SCOPES.indexOf(need);
}

/** A route's schema fragment: `schema: { ...needs('operate'), summary: ... }`. */
export function needs(scope: Scope): { [SCOPE_FIELD]: Scope } {
  return { [SCOPE_FIELD]: scope };
}
