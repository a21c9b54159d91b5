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
  /** Series name length → rules with a series that long: the cheap test before looking a name up without its base. */
  readonly #lengths = new Map<number, number>();

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): WatchedRule | undefined {
    return this.#byId.get(id);
  }

  /**
   * The rules watching a reading's series: its name, or its name less the
   * device's own id as base name (`<deviceId>/temperature`, the bn of
   * device-sim and of docs/protocol.md's example), so one rule serves a fleet
   * whose devices each prefix their names. The second lookup makes a string
   * only when a rule's series has exactly the length that is left.
   */
  forReading(deviceId: string, name: string): readonly WatchedRule[] | undefined {
    const exact = this.#bySeries.get(name);
    if (exact !== undefined) return exact;
    const rest = name.length - deviceId.length - 1;
    if (rest <= 0 || !this.#lengths.has(rest) || name.charCodeAt(deviceId.length) !== 0x2f || !name.startsWith(deviceId)) return undefined;
    return this.#bySeries.get(name.slice(deviceId.length + 1));
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
    this.#lengths.set(rule.series.length, (this.#lengths.get(rule.series.length) ?? 0) + 1);
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
    const sameLength = (this.#lengths.get(watched.rule.series.length) ?? 1) - 1;
    if (sameLength > 0) this.#lengths.set(watched.rule.series.length, sameLength);
    else this.#lengths.delete(watched.rule.series.length);
    return watched;
  }
}
