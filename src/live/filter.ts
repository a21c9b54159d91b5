/**
 * A connection's filter: device ids and series names, each exact or a prefix
 * (a trailing `*`); an empty list lets everything through. Parsed from the
 * `subscribe` frame or the SSE query, checked once, then matched per event.
 */
import { PulsewireError } from '../errors/catalog.js';
import type { LiveBatch } from './types.js';

const MAX_PATTERNS = 1000;
const PATTERN = /^[A-Za-z0-9._:/-]{0,128}\*?$/;

class Patterns {
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      if (p.endsWith('*')) this.#prefixes.push(p.slice(0, -1));
      else this.#exact.add(p);
    }
  }

  get all(): boolean {
    return this.#exact.size === 0 && this.#prefixes.length === 0;
  }

  /** The exact values, when there are only exact values (no prefix, not "all"). */
  get exactOnly(): ReadonlySet<string> | undefined {
    return this.all || this.#prefixes.length > 0 ? undefined : this.#exact;
  }

  matches(value: string): boolean {
    if (this.all || this.#exact.has(value)) return true;
    for (const prefix of this.#prefixes) if (value.startsWith(prefix)) return true;
    return false;
  }
}

export class LiveFilter {
  static readonly ALL = new LiveFilter([], []);
  readonly devices: readonly string[];
  readonly names: readonly string[];
  readonly #devices: Patterns;
  readonly #names: Patterns;

  constructor(devices: readonly string[], names: readonly string[]) {
    this.devices = devices;
    this.names = names;
    this.#devices = new Patterns(devices);
    this.#names = new Patterns(names);
  }

  /** True when nothing is filtered out: the connection can share the unfiltered frame. */
  get all(): boolean {
    return this.#devices.all && this.#names.all;
  }

  device(id: string): boolean {
    return this.#devices.matches(id);
  }

  /** The device ids this filter names exactly, or undefined when it takes a prefix or every device. */
  get exactDevices(): ReadonlySet<string> | undefined {
    return this.#devices.exactOnly;
  }

  reading(device: string, name: string): boolean {
    return this.#devices.matches(device) && this.#names.matches(name);
  }

  /** Jobs span many devices, so every filter lets them through. */
  apply(batch: LiveBatch): LiveBatch {
    if (this.all) return batch;
    return {
      readings: batch.readings.filter((r) => this.reading(r.device, r.name)),
      status: batch.status.filter((s) => this.device(s.device)),
      commands: batch.commands.filter((c) => this.device(c.deviceId)),
      state: batch.state.filter((s) => this.device(s.device)),
      jobs: batch.jobs,
      alerts: batch.alerts.filter((a) => this.device(a.deviceId)),
    };
  }
}

/** Validates one list of the subscribe frame (or a comma-separated query parameter). */
export function parsePatterns(field: string, value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? value.split(',').filter((item) => item !== '') : value;
  if (!Array.isArray(list) || list.length > MAX_PATTERNS) {
    throw new PulsewireError('PW_ERR_LIVE_SUBSCRIBE', `${field}: a list of at most ${MAX_PATTERNS} ids or prefixes`);
  }
  for (const item of list) {
    if (typeof item !== 'string' || !PATTERN.test(item)) {
      throw new PulsewireError('PW_ERR_LIVE_SUBSCRIBE', `${field}: ${JSON.stringify(String(item).slice(0, 40))} is not an id, name or prefix ending in *`);
    }
  }
  return list as string[];
}

/** `{"type":"subscribe","devices":[...],"names":[...]}` → a filter, or a PW_ERR_LIVE_SUBSCRIBE. */
export function parseSubscribe(text: string): LiveFilter {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new PulsewireError('PW_ERR_LIVE_SUBSCRIBE', 'not JSON');
  }
  if (typeof message !== 'object' || message === null || (message as { type?: unknown }).type !== 'subscribe') {
    throw new PulsewireError('PW_ERR_LIVE_SUBSCRIBE', 'expected {"type":"subscribe",...}');
  }
  const { devices, names } = message as { devices?: unknown; names?: unknown };
  return new LiveFilter(parsePatterns('devices', devices), parsePatterns('names', names));
}
