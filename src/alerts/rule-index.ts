/**
 * The rules in force, indexed for the ingest path: by series name first (a
 * Map lookup per reading, and most readings stop there), then by device (a
 * Set lookup or a prefix test). Each watched rule owns the tracks of the
 * devices it has seen (alert-track.ts), so removing a rule drops its state
 * with it.
 */
import { AlertTrack } from './alert-track.js';
import type { AlertRule } from './types.js';

export class WatchedRule {
  readonly rule: AlertRule;
  readonly forMs: number;
  /** deviceId → its track for this rule's series. */
  readonly tracks: Map<string, AlertTrack>;
  readonly #ids: ReadonlySet<string> | undefined;
  readonly #prefix: string;

  constructor(rule: AlertRule, tracks = new Map<string, AlertTrack>()) {
    this.rule = rule;
    this.forMs = rule.condition.kind === 'stale' ? 0 : rule.forSeconds * 1000;
    this.tracks = tracks;
    this.#ids = rule.devices.ids ? new Set(rule.devices.ids) : undefined;
    this.#prefix = rule.devices.prefix ?? '';
  }

  matches(deviceId: string): boolean {
    return this.#ids ? this.#ids.has(deviceId) : deviceId.startsWith(this.#prefix);
  }

  /** Its track of `deviceId`, created (ok, seen `now`) when it has none. */
  track(deviceId: string, now: number): AlertTrack {
    let track = this.tracks.get(deviceId);
    if (track === undefined) this.tracks.set(deviceId, (track = new AlertTrack(now)));
    return track;
  }
}

/**
 * Whether `next` watches the same thing as `previous` (series, devices, kind
 * of condition), so its tracks carry over: a changed threshold or duration
 * applies from the next reading on, and an alert firing under the old one
 * resolves only when a reading says so.
 */
export function sameWatch(previous: AlertRule, next: AlertRule): boolean {
  return previous.series === next.series && previous.condition.kind === next.condition.kind
    && previous.devices.prefix === next.devices.prefix
    && JSON.stringify(previous.devices.ids ?? null) === JSON.stringify(next.devices.ids ?? null);
}

export class RuleIndex {
  readonly #byId = new Map<string, WatchedRule>();
  readonly #bySeries = new Map<string, WatchedRule[]>();

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): WatchedRule | undefined {
    return this.#byId.get(id);
  }

  forSeries(series: string): readonly WatchedRule[] | undefined {
    return this.#bySeries.get(series);
  }

  all(): IterableIterator<WatchedRule> {
    return this.#byId.values();
  }

  /** Puts `rule` in force; its tracks carry over from the version it replaces when `keepTracks`. */
  set(rule: AlertRule, keepTracks: boolean): WatchedRule {
    const previous = this.delete(rule.id);
    const watched = new WatchedRule(rule, keepTracks && previous ? previous.tracks : undefined);
    this.#byId.set(rule.id, watched);
    const list = this.#bySeries.get(rule.series);
    if (list) list.push(watched);
    else this.#bySeries.set(rule.series, [watched]);
    return watched;
  }

  delete(id: string): WatchedRule | undefined {
    const watched = this.#byId.get(id);
    if (watched === undefined) return undefined;
    this.#byId.delete(id);
    const list = this.#bySeries.get(watched.rule.series) ?? [];
    const rest = list.filter((other) => other !== watched);
    if (rest.length > 0) this.#bySeries.set(watched.rule.series, rest);
    else this.#bySeries.delete(watched.rule.series);
    return watched;
  }
}
